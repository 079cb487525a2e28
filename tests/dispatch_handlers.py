"""A registry with three handlers on one key, imported by the test workers
(tests/conf.py).

Each handler appends ``[name, body]`` as JSON to the Redis list
:data:`RECORDS_KEY`. ``first`` and ``second`` keep the registry's default
(their results are not stored); ``kept`` asks for its result.
"""
import json

import redis

from gwcelery import app
from gwcelery.tasks.core import DispatchHandler

#: Redis list of what the handlers got, oldest first.
RECORDS_KEY = 'tests:dispatch:records'


class _Registry(DispatchHandler):
    key_name = 'node'

    def process_args(self, payload):
        message = json.loads(payload)
        return message['node'], (message['body'],), {}


registry = _Registry()

_client = {}


def _record(name, body):
    if 'redis' not in _client:
        _client['redis'] = redis.Redis.from_url(app.conf.broker_url)
    _client['redis'].rpush(RECORDS_KEY, json.dumps([name, body]))
    return [name, body]


@registry.handler('cbc_test', shared=False)
def first(body):
    return _record('first', body)


@registry.handler('cbc_test', shared=False)
def second(body):
    return _record('second', body)


@registry.handler('cbc_test', shared=False, ignore_result=False)
def kept(body):
    return _record('kept', body)
