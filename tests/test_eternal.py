"""Eternal tasks with real workers, real beat and real signals.

The test-only task :func:`tests.tasks.heartbeat` records, every 50 ms, when
each copy of it runs. Two workers and beat run it; the tests kill or stop the
worker holding it and check that the other takes over in time and that the
copies' lifetimes never overlap.

:func:`tests.patient_tasks.patient_heartbeat`, which never stops for a Redis
error, checks that a worker whose Redis is gone still shuts down.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from gwcelery.util.waiting import free_port, listening, wait_for

from tests.tasks import RUNS_KEY

pytestmark = pytest.mark.slow


def runs(redis_client):
    """Every copy that has run so far, oldest first."""
    records = [json.loads(value) | {'id': key.decode()}
               for key, value in redis_client.hgetall(RUNS_KEY).items()]
    return sorted(records, key=lambda record: record['start'])


def assert_never_overlapping(records):
    for earlier, later in zip(records, records[1:]):
        assert earlier['last'] < later['start'], (
            f'two copies ran at once: {earlier} and {later}')


@pytest.fixture
def deployment(redis_client, start_worker, start_beat):
    """Two general workers and beat, with the heartbeat task running."""
    # Enough pool processes for every eternal task of the application (the
    # listeners) plus the test's, on the survivor alone.
    workers = {name: start_worker(name, 'celery', '-c', '4')
               for name in ('eternal-a', 'eternal-b')}
    start_beat()
    first = wait_for(lambda: runs(redis_client), timeout=30,
                     what='the eternal task to start')[0]
    return workers, first


def holder(workers, record):
    return next(w for w in workers.values() if w.hostname == record['worker'])


def test_exactly_one_copy_runs(redis_client, deployment):
    workers, first = deployment
    # Watch for a while: beat re-sends every second, and each of the free
    # pool processes is free to take a copy; none must start.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = runs(redis_client)
        assert len(records) == 1, records
        time.sleep(0.2)
    record = runs(redis_client)[0]
    assert record['stop'] is None
    assert time.time() - record['last'] < 1, 'the copy stopped beating'


@pytest.mark.parametrize('signum,limit', [
    (signal.SIGTERM, 5.0),
    (signal.SIGKILL, 15.0),
], ids=['warm-shutdown', 'killed'])
def test_failover(redis_client, deployment, signum, limit):
    workers, first = deployment
    victim = holder(workers, first)
    survivor = next(w for w in workers.values() if w is not victim)
    killed_at = time.time()
    victim.signal(signum)

    second = wait_for(
        lambda: next((r for r in runs(redis_client)
                      if r['id'] != first['id']), None),
        timeout=limit + 10, what='another worker to take over')
    takeover = second['start'] - killed_at
    print(f'{signal.Signals(signum).name}: taken over after {takeover:.2f} s')
    assert second['worker'] == survivor.hostname
    assert takeover < limit

    victim.proc.wait(60)
    records = runs(redis_client)
    assert_never_overlapping(records)
    if signum == signal.SIGTERM:
        stopped = next(r for r in records if r['id'] == first['id'])
        assert stopped['stop'] is not None, 'the copy did not stop cleanly'
        assert victim.proc.returncode == 0, victim.log()[-3000:]
    # The survivor keeps running exactly one copy.
    assert len(records) == 2


def test_a_restarted_worker_frees_the_locks_of_its_killed_self(
        redis_client, start_worker, start_beat):
    """SIGKILL the whole worker (pool included), start it again: it frees
    the lock its dead pool process held, and beat starts the task again
    long before the lock's two minutes would have run out."""
    env = {'CELERY_CONFIG_MODULE': 'tests.fixtures.long_lock_conf'}
    first_worker = start_worker('eternal-a', 'celery', '-c', '4', env=env)
    start_beat(env=env)
    first = wait_for(lambda: runs(redis_client), timeout=30,
                     what='the eternal task to start')[0]
    os.killpg(first_worker.pid, signal.SIGKILL)
    first_worker.proc.wait()
    killed_at = time.time()
    second_worker = start_worker('eternal-a', 'celery', '-c', '4', env=env)
    second = wait_for(
        lambda: next((r for r in runs(redis_client)
                      if r['id'] != first['id']), None),
        timeout=60, what='the task to run again')
    print(f'running again {second["start"] - killed_at:.2f} s after the kill')
    log = second_worker.log()
    assert f'Freed the lock of eternal task tests.tasks.heartbeat' \
        f'[{first["id"]}]' in log, log[-3000:]
    assert f'process {first["pid"]} of worker eternal-a@' in log
    assert_never_overlapping(runs(redis_client))


def test_a_worker_leaves_the_locks_of_live_holders_alone(
        redis_client, deployment, start_worker):
    """A worker that starts beside one running the task frees nothing, and
    the task keeps running once."""
    workers, first = deployment
    third = start_worker('eternal-c', 'celery', '-c', '4')
    for worker in (*workers.values(), third):
        assert 'Freed the lock' not in worker.log()
    assert [r['id'] for r in runs(redis_client)] == [first['id']]


class _ScratchRedis:
    """A redis-server of the test's own, to kill and start again on the
    same port."""

    def __init__(self, folder):
        from gwcelery.deployment import find_redis_server
        self.binary = find_redis_server()
        self.folder = folder
        self.port = free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, '--port', str(self.port), '--bind', '127.0.0.1',
             '--dir', str(self.folder), '--save', '', '--appendonly', 'no'],
            stdout=open(self.folder / 'redis.log', 'a'),
            stderr=subprocess.STDOUT)
        wait_for(lambda: listening('127.0.0.1', self.port), timeout=20,
                 what='the scratch redis-server')

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def patient(tmp_path, start_worker, start_beat):
    """A worker and beat on a Redis of their own, running
    :func:`tests.patient_tasks.patient_heartbeat`, which never stops for
    a Redis error."""
    import redis as redis_module

    from tests.patient_tasks import PATIENT_RUNS_KEY
    scratch = _ScratchRedis(tmp_path)
    scratch.start()
    env = {'CELERY_BROKER_URL': scratch.url,
           'CELERY_RESULT_BACKEND': scratch.url,
           'GWCELERY_TEST_LVALERT_URL': scratch.url,
           'CELERY_CONFIG_MODULE': 'tests.fixtures.patient_conf'}
    # Their readiness shows in their logs: the test's own app, which
    # start_worker pings through, is on the session's Redis.
    worker = start_worker('patient', 'celery', '-c', '4', env=env,
                          wait=False)
    wait_for(lambda: 'ready.' in worker.log(), timeout=90,
             what='the worker to start')
    start_beat(env=env)
    client = redis_module.Redis.from_url(scratch.url)
    wait_for(lambda: client.hlen(PATIENT_RUNS_KEY), timeout=60,
             what='the patient eternal task to start')
    client.close()
    yield scratch, worker
    scratch.kill()


def _asked_again(worker):
    return 'Could not ask eternal task' in worker.log()


def test_shutdown_waits_for_redis_to_ask_eternal_tasks_to_stop(patient):
    """Redis gone when the worker shuts down, back soon after: the worker
    asks the eternal task to stop once it can, and exits cleanly."""
    scratch, worker = patient
    scratch.kill()
    worker.signal(signal.SIGTERM)
    wait_for(lambda: _asked_again(worker), timeout=30,
             what='the worker to report that it cannot ask yet')
    scratch.start()
    worker.proc.wait(60)
    log = worker.log()
    assert 'trying again' in log
    assert 'killing its pool process' not in log, log[-3000:]


def test_shutdown_kills_an_eternal_task_it_cannot_ask(patient):
    """Redis gone for good: after the lock's time to live the worker
    kills the eternal task's pool process instead of waiting for it forever."""
    scratch, worker = patient
    scratch.kill()
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    worker.proc.wait(90)
    took = time.monotonic() - began
    log = worker.log()
    assert 'patient_heartbeat' in log and 'killing its pool process' in log, log[-3000:]
    # Not before the time to live of tests.fixtures.patient_conf (10 s).
    assert took >= 10.0, log[-3000:]
