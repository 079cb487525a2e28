"""Test-only tasks, imported by workers and beat through tests/conf.py."""
import json
import os
import time

import redis

from gwcelery import app
from gwcelery.eternal import EternalTask

#: Redis hash: one field per run of :func:`heartbeat`, a JSON record.
RUNS_KEY = 'tests:eternal:runs'


@app.task(base=EternalTask, bind=True, shared=False)
def heartbeat(self):
    """An eternal task that records when each copy runs, to check failover.

    Every 50 ms it stores ``{"worker", "pid", "start", "last", "stop"}``
    under its task id, so a test can tell whether two copies ever ran at
    once even when one is killed without warning.
    """
    client = redis.Redis.from_url(app.conf.broker_url)
    record = {'worker': self.request.hostname, 'pid': os.getpid(),
              'start': time.time(), 'last': time.time(), 'stop': None}
    while not self.is_aborted():
        record['last'] = time.time()
        client.hset(RUNS_KEY, self.request.id, json.dumps(record))
        time.sleep(0.05)
    record['last'] = record['stop'] = time.time()
    client.hset(RUNS_KEY, self.request.id, json.dumps(record))


@app.task(shared=False)
def add(x, y):
    """A trivial task for round trips."""
    return x + y


@app.task(shared=False)
def echo(value):
    """Return the argument unchanged (serialization checks)."""
    return value


@app.task(shared=False)
def record(key, value):
    """Append ``value`` to the Redis list ``key`` (to see the order in
    which a worker runs tasks)."""
    client = redis.Redis.from_url(app.conf.broker_url)
    client.rpush(key, value)
    client.close()


@app.task(shared=False, acks_late=True, reject_on_worker_lost=True)
def long_first_run(key, seconds):
    """Append the time to the Redis list ``key``; on the first run only,
    then take ``seconds`` (a long task, for a worker to be killed in)."""
    client = redis.Redis.from_url(app.conf.broker_url)
    runs = client.rpush(key, time.time())
    client.close()
    if runs == 1:
        time.sleep(seconds)
    return runs
