"""An eternal task that outlives its Redis, as the listeners do.

:func:`patient_heartbeat` records that it runs, like
:func:`tests.tasks.heartbeat`, but takes every Redis error in its stride
(the LVAlert listener retries an unreachable Redis; the GCN listener does
not use it at all), so that it never ends unless asked to. Only the
workers of :mod:`tests.fixtures.patient_conf` import it.
"""
import json
import os
import time

import redis

from gwcelery import app
from gwcelery.eternal import EternalTask

#: Redis hash: one field per copy, a JSON record (as tests.tasks.RUNS_KEY).
PATIENT_RUNS_KEY = 'tests:eternal:patient-runs'


def _aborted(task):
    try:
        return task.is_aborted()
    except Exception:  # the result backend is away: not asked, then
        return False


@app.task(base=EternalTask, bind=True, shared=False)
def patient_heartbeat(self):
    """Record ``{"pid", "start", "last", "stop"}`` every 50 ms while Redis
    answers; never stop for Redis errors; stop when aborted."""
    client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=1)
    record = {'pid': os.getpid(), 'start': time.time(), 'last': None,
              'stop': None}
    while not _aborted(self):
        record['last'] = time.time()
        try:
            client.hset(PATIENT_RUNS_KEY, self.request.id, json.dumps(record))
        except redis.RedisError:
            pass
        time.sleep(0.05)
