"""The handler registry, :class:`gwcelery.tasks.core.DispatchHandler`."""
import json
import logging
import uuid

import pytest

from gwcelery import app
from gwcelery.tasks.core import DispatchHandler


class JSONDispatchHandler(DispatchHandler):
    """Like the LVAlert registry: the payload is JSON naming its key."""

    key_name = 'node'

    def process_args(self, payload):
        message = json.loads(payload)
        return message['node'], (message['body'],), {}


@pytest.fixture
def registry():
    return JSONDispatchHandler()


def test_handler_makes_tasks_with_options(registry):
    @registry.handler('a', 'b', queue='exttrig', shared=False)
    def handle(body):
        return body

    assert registry['a'] == [handle] and registry['b'] == [handle]
    assert handle.name in app.tasks
    assert handle.queue == 'exttrig'
    assert handle('x') == 'x'


def test_handler_needs_a_key(registry):
    with pytest.raises(TypeError):
        registry.handler()


def test_several_handlers_per_key(registry):
    @registry.handler('a', shared=False)
    def first(body):
        pass

    @registry('a', shared=False)  # calling the registry is the same thing
    def second(body):
        pass

    assert registry['a'] == [first, second]


def test_unknown_key_is_logged_and_ignored(registry, caplog):
    with caplog.at_level(logging.INFO):
        result = registry.dispatch(json.dumps({'node': 'nope', 'body': 1}))
    assert result is None
    assert "no handler registered" in caplog.text and "'nope'" in caplog.text


@pytest.mark.parametrize('payload', [
    b'{not json', '', json.dumps({'body': 'no key'}), json.dumps([1, 2])])
def test_undecodable_payload_is_logged_and_dropped(registry, caplog, payload):
    # A task name of its own for each parametrized run.
    @registry.handler('a', shared=False,
                      name=f'tests.test_dispatch.undecodable_{uuid.uuid4().hex}')
    def handle(body):
        pass

    with caplog.at_level(logging.ERROR):
        assert registry.dispatch(payload) is None
    assert 'could not be decoded' in caplog.text


def test_default_process_args_takes_the_key_first():
    registry = DispatchHandler()
    assert registry.process_args('k', 1, x=2) == ('k', (1,), {'x': 2})
    with pytest.raises(TypeError):
        registry.process_args()


@pytest.mark.slow
def test_dispatch_runs_every_handler_in_a_worker(redis_client, start_worker):
    """A real worker runs both handlers of the key, with the decoded body."""
    from tests.dispatch_handlers import registry

    start_worker('dispatch', 'celery', '-c', '2')
    payload = json.dumps({'node': 'cbc_test', 'body': {'graceid': 'G1'}})
    result = registry.dispatch(payload)
    assert sorted(result.get(timeout=30)) == [
        ['first', {'graceid': 'G1'}], ['second', {'graceid': 'G1'}]]
