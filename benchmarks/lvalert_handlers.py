"""The handler of benchmarks/lvalert.py: notes when it starts."""
import json
import time

import redis

from gwcelery import app
from gwcelery.tasks import lvalert

NODE = 'bench_lvalert'
RECORDS_KEY = 'bench:lvalert:starts'

_client = {}


@lvalert.handler(NODE, shared=False, name='bench.lvalert.record')
def record(alert):
    """Note the start time of this handler beside the alert's send time."""
    start = time.time()
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    _client['redis'].rpush(RECORDS_KEY, json.dumps(
        {'n': alert.get('n'), 'kind': alert.get('kind'),
         'sent': alert.get('sent'), 'start': start}))
