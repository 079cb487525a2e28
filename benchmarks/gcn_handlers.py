"""The handler of benchmarks/gcn.py: notes when it starts, per notice."""
import json
import time

import redis
from gcn import NoticeType

from gwcelery import app
from gwcelery.tasks import gcn
from gwcelery.util import xml
from gwcelery.vtp.parsing import MAX_PACKET_SIZE

RECEIVED_KEY = 'bench:gcn:received'

_client = {}


@gcn.handler(NoticeType.FERMI_GBM_FIN_POS, shared=False,
             name='bench.gcn.record')
def record(payload):
    """Note this handler's start time beside the notice's ivorn."""
    start = time.time()
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    ivorn = xml.voevent_ivorn(xml.parse(payload, MAX_PACKET_SIZE))
    _client['redis'].rpush(RECEIVED_KEY, json.dumps(
        {'ivorn': ivorn, 'time': start}))
