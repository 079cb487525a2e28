"""Test-only LVAlert handlers, imported by workers through tests/conf.py.

Each appends ``{"handler", "alert"}`` as JSON to the Redis list
:data:`RECEIVED_KEY`, so a test can check which handler got what.
"""
import json

import redis

from gwcelery import app
from gwcelery.tasks import lvalert

#: Redis list of what the handlers received, oldest first.
RECEIVED_KEY = 'tests:lvalert:received'

#: Nodes with a test handler; the listener subscribes to exactly these.
EVENT_NODES = ('test_gstlal', 'cbc_gstlal')
SUPEREVENT_NODES = ('superevent', 'test_superevent')

_client = None


def _record(handler, alert):
    global _client
    if _client is None:
        _client = redis.Redis.from_url(app.conf.broker_url)
    _client.rpush(RECEIVED_KEY, json.dumps({'handler': handler,
                                            'alert': alert}))


@lvalert.handler(*EVENT_NODES, shared=False)
def record_event_alert(alert):
    """Record an alert of an event node."""
    _record('event', alert)


@lvalert.handler(*SUPEREVENT_NODES, shared=False)
def record_superevent_alert(alert):
    """Record an alert of a superevent node."""
    _record('superevent', alert)
