"""A registry with two handlers, imported by the test workers (tests/conf.py)."""
import json

from gwcelery.tasks.core import DispatchHandler


class _Registry(DispatchHandler):
    key_name = 'node'

    def process_args(self, payload):
        message = json.loads(payload)
        return message['node'], (message['body'],), {}


registry = _Registry()


@registry.handler('cbc_test', shared=False)
def first(body):
    return ['first', body]


@registry.handler('cbc_test', shared=False)
def second(body):
    return ['second', body]
