"""The baseline handler of benchmarks/superevents.py.

It listens on the same nodes as the superevent manager and notes when it
starts, on the general worker: the time an alert takes from upload to a
handler that does nothing, which the superevent manager's latency is
compared with.
"""
import time

import redis

from gwcelery import app
from gwcelery.tasks import lvalert
from gwcelery.tasks.superevents import NODES

STARTS_KEY = 'bench:superevents:baseline'

_client = {}


@lvalert.handler(*NODES, shared=False, ignore_result=True,
                 name='bench.superevents.record')
def record(alert):
    """Note this handler's start time under the alert's uid."""
    start = time.time()
    if alert.get('alert_type') != 'new':
        return
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    _client['redis'].hsetnx(STARTS_KEY, alert.get('uid'), repr(start))
