"""Eternal tasks with real workers, real beat and real signals.

The test-only task :func:`tests.tasks.heartbeat` records, every 50 ms, when
each copy of it runs. Two workers and beat run it; the tests kill or stop the
worker holding it and check that the other takes over in time and that the
copies' lifetimes never overlap.
"""
import json
import signal
import time

import pytest

from gwcelery.util.waiting import wait_for

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
