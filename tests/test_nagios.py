"""``gwcelery nagios`` against a running system, broken one part at a time.

Real Redis, real workers and beat, the real GCN feed, a real VTP subscriber
(pygcn) on the VOEvent broadcaster and the session's local GraceDb; the
check runs as the command a monitor would run.
"""
import os
import signal
import subprocess
import sys

import pytest

from gwcelery.tools.nagios import Result, Status, summary
from gwcelery.util.waiting import free_port, wait_for
from tests.conftest import ROOT

CONF = '''\
from tests.conf import *  # noqa
listener_status_ttl = 3.0
voevent_broadcaster_expected_subscribers = ('127.0.0.1',)
'''

# Registered only where the check runs: a node and a queue that no worker
# knows, and an eternal task that none runs.
EXTRA = '''\
from gwcelery import app
from gwcelery.eternal import EternalTask
from gwcelery.tasks import lvalert

@lvalert.handler('nagios_extra_node', queue='nagios_extra_queue')
def extra_handler(alert):
    pass

@app.task(base=EternalTask, bind=True, shared=False)
def extra_listener(self):
    pass
'''


@pytest.fixture
def configs(tmp_path):
    (tmp_path / 'conf_nagios.py').write_text(CONF)
    (tmp_path / 'nagios_extra.py').write_text(EXTRA)
    (tmp_path / 'conf_nagios_extra.py').write_text(
        'from conf_nagios import *  # noqa\n'
        "imports = imports + ('nagios_extra',)  # noqa: F405\n")
    (tmp_path / 'conf_nagios_bad.py').write_text(
        'from conf_nagios import *  # noqa\n'
        'voevent_broadcaster_expected_subscribers = 5\n')
    return {'CELERY_CONFIG_MODULE': 'conf_nagios', 'PYTHONPATH':
            f'{tmp_path}{os.pathsep}{os.environ["PYTHONPATH"]}'}


def nagios(env, **extra):
    result = subprocess.run(
        [sys.executable, '-m', 'gwcelery', 'nagios', '--timeout', '2'],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, **env, **extra})
    lines = result.stdout.splitlines()
    checks = {}
    for line in lines[1:]:
        state, _, rest = line.partition(' ')
        name, _, message = rest.partition(': ')
        checks[name] = (state, message)
    return result.returncode, (lines or [''])[0], checks, result


def bad(checks):
    return {name for name, (state, _) in checks.items() if state != 'OK'}


def wait_status(env, predicate, what, timeout=90, **extra):
    outcome = []

    def check():
        outcome[:] = nagios(env, **extra)
        return predicate(*outcome[:3])

    try:
        wait_for(check, timeout=timeout, interval=0.5, what=what)
    except TimeoutError:
        raise AssertionError(f'{what}; last output:\n{outcome[3].stdout}'
                             f'{outcome[3].stderr}')
    return outcome


@pytest.mark.slow
def test_each_failure_is_seen(configs, gracedb_url, start_worker, start_beat,
                              gcn_feed, pygcn_client):
    feed_port, broadcaster_port = free_port(), free_port()
    env = {**configs, 'GWCELERY_TEST_GCN_ADDRESS': f'127.0.0.1:{feed_port}',
           'GWCELERY_TEST_VOEVENT_ADDRESS': f'127.0.0.1:{broadcaster_port}'}
    feed = gcn_feed(feed_port)
    general = start_worker('nagios-general', 'celery', '-c', '6', env=env)
    start_worker('nagios-serial', 'openmp,superevent,exttrig,voevent',
                 '-P', 'solo', env=env)
    start_beat(env=env)
    subscriber = pygcn_client(broadcaster_port)

    code, line, checks, _ = wait_status(
        env, lambda code, *_: code == 0, 'every check to pass')
    assert line.startswith('OK: ')
    assert set(checks) == {'broker', 'queues', 'eternal tasks', 'lvalert',
                           'gcn', 'voevent', 'gracedb'}
    assert 'gwcelery.tasks.gcn.listen' in checks['eternal tasks'][1]

    # The expected VOEvent subscriber goes away.
    subscriber.stop()
    code, line, checks, _ = wait_status(
        env, lambda code, line, checks: bad(checks) == {'voevent'},
        'the missing subscriber to be seen')
    assert code == 2 and line.startswith('CRITICAL: voevent: ')
    assert '127.0.0.1' in checks['voevent'][1]
    subscriber = pygcn_client(broadcaster_port)

    # The GCN feed stops: the listener is no longer connected.
    feed.stop()
    code, line, checks, _ = wait_status(
        env, lambda code, line, checks: 'gcn' in bad(checks),
        'the GCN disconnection to be seen')
    assert code == 2 and bad(checks) == {'gcn'}, checks
    feed = gcn_feed(feed_port)
    wait_status(env, lambda code, *_: code == 0, 'the GCN listener to '
                'reconnect')

    # GraceDb does not answer.
    code, line, checks, _ = nagios(
        env, GWCELERY_TEST_GRACEDB_URL=f'http://127.0.0.1:{free_port()}/api/')
    assert code == 2 and bad(checks) == {'gracedb'}, checks

    # The checking side knows of a node, a queue and an eternal task that
    # the running workers do not: each check names its own.
    code, line, checks, _ = nagios(env, CELERY_CONFIG_MODULE='conf_nagios_extra')
    assert code == 2 and bad(checks) == {'queues', 'eternal tasks',
                                         'lvalert'}, checks
    assert 'nagios_extra_queue' in checks['queues'][1]
    assert 'nagios_extra.extra_listener is not running' in checks[
        'eternal tasks'][1]
    assert 'not subscribed to nagios_extra_node' in checks['lvalert'][1]

    # A check that cannot be evaluated (a bad setting) is UNKNOWN.
    code, line, checks, _ = nagios(env, CELERY_CONFIG_MODULE='conf_nagios_bad')
    assert code == 3 and line.startswith('UNKNOWN: voevent: TypeError')

    # The broker is unreachable: critical, and nothing else can be known.
    closed = f'redis://127.0.0.1:{free_port()}/0'
    code, line, checks, _ = nagios(env, CELERY_BROKER_URL=closed,
                                   CELERY_RESULT_BACKEND=closed)
    assert code == 2 and line.startswith('CRITICAL: broker: ')
    assert {checks[n][0] for n in checks if n not in ('broker', 'gracedb')} \
        == {'UNKNOWN'}

    # The general worker is killed: its queue has no consumer, the
    # listeners' locks are held by tasks that no worker runs, and their
    # records expire.
    os.killpg(general.pid, signal.SIGKILL)
    general.proc.wait()
    code, line, checks, _ = wait_status(
        env, lambda code, line, checks: {'queues', 'eternal tasks', 'lvalert',
                                         'gcn'} <= bad(checks),
        'the dead worker to be seen', timeout=60)
    assert code == 2
    assert 'celery' in checks['queues'][1]
    assert 'which no worker runs' in checks['eternal tasks'][1]


def test_summary_follows_the_plugin_conventions():
    ok = Result('a', Status.OK, 'fine')
    warn = Result('b', Status.WARNING, 'slow')
    unknown = Result('c', Status.UNKNOWN, 'no idea')
    crit = Result('d', Status.CRITICAL, 'down')
    assert summary([ok, ok]) == (Status.OK, 'OK: 2 checks passed')
    assert summary([ok, warn]) == (Status.WARNING, 'WARNING: b: slow')
    assert summary([warn, unknown]) == (Status.UNKNOWN,
                                        'UNKNOWN: c: no idea')
    # Checks not run for lack of a broker leave the verdict CRITICAL.
    assert summary([crit, unknown, warn]) == (Status.CRITICAL,
                                              'CRITICAL: d: down')


def test_no_worker_at_all(redis_client, configs):
    code, line, checks, result = nagios(configs)
    assert code == 2, result.stdout + result.stderr
    assert checks['broker'][0] == 'OK'
    assert checks['queues'] == ('CRITICAL', 'no worker answers')
    assert line.startswith('CRITICAL: ')
