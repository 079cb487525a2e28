"""The handler of benchmarks/gcn.py: notes when it starts, per notice."""
import json
import time

import redis
from gcn import NoticeType

from gwcelery import app
from gwcelery.tasks import gcn
from gwcelery.vtp.parsing import parse

RECEIVED_KEY = 'bench:gcn:received'

_client = {}


@gcn.handler(NoticeType.FERMI_GBM_FIN_POS, shared=False,
             name='bench.gcn.record')
def record(payload):
    """Note this handler's start time beside the notice's ivorn."""
    start = time.time()
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    _client['redis'].rpush(RECEIVED_KEY, json.dumps(
        {'ivorn': parse(payload).get('ivorn'), 'time': start}))
