"""The baseline handler of benchmarks/superevents.py.

It listens on the same nodes as the superevent manager and notes when it
starts, on a queue and a worker of its own (as the manager has): the time
an alert takes from upload to a handler that does nothing, which the
superevent manager's latency is compared with. On the general worker it
would wait behind the orchestrator's tasks for the same events.
"""
import time

import redis

from gwcelery import app
from gwcelery.tasks import lvalert
from gwcelery.tasks.superevents import NODES

STARTS_KEY = 'bench:superevents:baseline'

_client = {}


#: The baseline's queue, which only the benchmark's baseline worker reads.
QUEUE = 'bench-baseline'


@lvalert.handler(*NODES, shared=False, ignore_result=True, queue=QUEUE,
                 name='bench.superevents.record')
def record(alert):
    """Note this handler's start time under the alert's uid."""
    start = time.time()
    if alert.get('alert_type') != 'new':
        return
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    _client['redis'].hsetnx(STARTS_KEY, alert.get('uid'), repr(start))
