"""``gwcelery local start|status|stop``: the whole deployment, for real.

It runs supervisor with every program of :data:`gwcelery.deployment.PROGRAMS`
and its own Redis (nothing listens at the configured broker address), then
checks that every worker answers, Flower serves, and ``stop`` leaves no
process behind.
"""
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gwcelery import deployment
from gwcelery.util.waiting import free_port, wait_for
from tests.conftest import ROOT, require_program

pytestmark = pytest.mark.slow

QUEUE_WORKERS = {'general', 'openmp', 'superevent', 'exttrig', 'voevent'}


def run(args, env, timeout=180):
    return subprocess.run(
        [sys.executable, '-m', 'gwcelery', *args], capture_output=True,
        text=True, cwd=ROOT, env=env, timeout=timeout)


@pytest.fixture
def local_env(tmp_path):
    """A configuration module whose every address is a free port."""
    require_program(deployment.find_redis_server(), 'redis-server')
    feed = f'127.0.0.1:{free_port()}'
    settings = {
        'broker_url': f'redis://127.0.0.1:{free_port()}/0',
        'gracedb_url': f'http://127.0.0.1:{free_port()}/api/',
        'gcn_feed_address': feed,
        'gcn_remote_address': (feed,),
        'voevent_broadcaster_address': f'127.0.0.1:{free_port()}',
        'flower_port': free_port(),
    }
    settings['result_backend'] = settings['lvalert_url'] = settings['broker_url']
    (tmp_path / 'conf_deployment.py').write_text(
        'from gwcelery.conf.local import *\n' + ''.join(
            f'{key} = {value!r}\n' for key, value in settings.items()))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('CELERY_', 'FLOWER_'))}
    env.update(CELERY_CONFIG_MODULE='conf_deployment',
               PYTHONPATH=f'{tmp_path}{os.pathsep}{env["PYTHONPATH"]}',
               GWCELERY_STATE_DIR=str(tmp_path / 'state'))
    yield env, settings
    # Never leave a deployment running, whatever happened above.
    run(['local', 'stop'], env)


def supervisor_pids(state):
    """Pids that supervisor reports for its programs."""
    out = subprocess.run(
        [sys.executable, '-m', 'supervisor.supervisorctl',
         '-c', str(state / 'supervisord.conf'), 'pid', 'all'],
        capture_output=True, text=True).stdout
    return [int(word) for word in out.split() if word.isdigit() and word != '0']


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_status_stop(local_env):
    env, settings = local_env
    state = Path(env['GWCELERY_STATE_DIR'])

    result = run(['local', 'start'], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'redis' in result.stdout  # nothing listened: it runs its own

    result = run(['local', 'start'], env)
    assert result.returncode != 0 and 'already running' in result.stderr

    def all_running():
        status = run(['local', 'status'], env)
        lines = [line for line in status.stdout.splitlines() if line.strip()]
        return status.returncode == 0 and lines and all(
            'RUNNING' in line for line in lines) and status.stdout
    status = wait_for(all_running, timeout=90, what='every program to run')
    for name in ['redis', 'beat', 'flower', 'localgracedb', 'gcn-feed'] + [
            f'worker-{queue}' for queue in QUEUE_WORKERS]:
        assert name in status
        assert (state / 'log' / f'{name}.log').exists()

    # Every queue's worker answers a ping.
    def workers_answer():
        out = run(['inspect', 'ping', '--timeout', '2'], env).stdout
        return all(f'gwcelery-{queue}@' in out for queue in QUEUE_WORKERS)
    wait_for(workers_answer, timeout=90, interval=1, what='workers to answer')

    def answers(url):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    # Flower, the local GraceDb and the GCN feed serve at their addresses.
    port = settings['flower_port']
    assert answers(f'http://127.0.0.1:{port}/healthcheck')
    wait_for(lambda: answers(settings['gracedb_url']), timeout=60,
             what='the local GraceDb to answer')
    host, port = settings['gcn_feed_address'].split(':')
    socket.create_connection((host, int(port)), timeout=5).close()

    pids = supervisor_pids(state)
    assert len(pids) >= 8

    result = run(['local', 'stop'], env)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=60,
             what='every process to exit')
    status = run(['local', 'status'], env)
    assert status.returncode == 3 and 'not running' in status.stdout


def test_restarts_a_killed_program(local_env):
    env, settings = local_env
    state = Path(env['GWCELERY_STATE_DIR'])
    assert run(['local', 'start'], env).returncode == 0

    def beat_pid():
        out = subprocess.run(
            [sys.executable, '-m', 'supervisor.supervisorctl',
             '-c', str(state / 'supervisord.conf'), 'pid', 'beat'],
            capture_output=True, text=True).stdout.strip()
        return int(out) if out.isdigit() and out != '0' else None

    first = wait_for(beat_pid, timeout=60, what='beat to start')
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (beat_pid() or first) != first and beat_pid(),
                      timeout=60, what='supervisor to restart beat')
    assert alive(second)


def test_foreground_says_where_to_look(local_env):
    """``make run``: once supervisor reports every process running, the
    command prints the addresses to open, the logs and the next mock event;
    SIGTERM (as Ctrl-C's SIGINT) stops everything."""
    env, settings = local_env
    state = Path(env['GWCELERY_STATE_DIR'])
    proc = subprocess.Popen(
        [sys.executable, '-m', 'gwcelery', 'local', 'start', '--foreground'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=env)
    lines = []
    try:
        def read_until_ready():
            line = proc.stdout.readline()
            assert line, 'exited early:\n' + ''.join(lines)
            lines.append(line)
            return line.startswith('  Mock events:')
        wait_for(read_until_ready, timeout=180, interval=0,
                 what='the where-to-look lines')
        out = ''.join(lines)
        # Printed only once supervisor said every process runs.
        status = run(['local', 'status'], env)
        assert status.returncode == 0, status.stdout
        site = settings['gracedb_url'][:-len('api/')]
        assert f'Local GraceDb: {site} ' in out
        assert f'Flower:        http://127.0.0.1:{settings["flower_port"]}/' \
            in out
        assert f'Logs:          {state / "log"}' in out
        assert 'every 120 s, the next at about ' in out
        pids = supervisor_pids(state)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=60,
             what='every process to exit')
