"""The handler registry, :class:`gwcelery.tasks.core.DispatchHandler`."""
import json
import logging
import uuid

import pytest

from gwcelery import app
from gwcelery.tasks.core import DispatchHandler, Drop


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


def test_handlers_ignore_results_unless_asked(registry):
    @registry.handler('a', shared=False,
                      name='tests.test_dispatch.result_ignored')
    def ignored(body):
        pass

    @registry.handler('a', shared=False, ignore_result=False,
                      name='tests.test_dispatch.result_kept')
    def kept(body):
        pass

    assert ignored.ignore_result is True
    assert kept.ignore_result is False


def test_refused_payload_is_logged_without_traceback(caplog):
    class Picky(DispatchHandler):
        def process_args(self, payload):
            raise Drop(f'Ignoring {payload}: not for us', logging.INFO)

    with caplog.at_level(logging.INFO):
        assert Picky().dispatch('this payload') is None
    (record,) = [r for r in caplog.records
                 if r.getMessage() == 'Ignoring this payload: not for us']
    assert record.levelno == logging.INFO and not record.exc_info


@pytest.mark.slow
def test_dispatch_runs_every_handler_in_a_worker(redis_client, start_worker):
    """A real worker runs all three handlers of the key, with the decoded
    body; only the one that asked for it has a stored result."""
    from tests.dispatch_handlers import RECORDS_KEY, registry

    # One process runs the group's tasks one after the other, so by the
    # time the last one's result is stored the others have finished, and
    # stored theirs had they been going to.
    start_worker('dispatch', 'celery', '-c', '1')
    payload = json.dumps({'node': 'cbc_test', 'body': {'graceid': 'G1'}})
    result = registry.dispatch(payload)
    first, second, kept = result.results
    assert kept.get(timeout=30) == ['kept', {'graceid': 'G1'}]
    records = [json.loads(r) for r in redis_client.lrange(RECORDS_KEY, 0, -1)]
    assert records == [[name, {'graceid': 'G1'}]
                       for name in ('first', 'second', 'kept')]
    backend = registry['cbc_test'][0].backend
    assert redis_client.exists(backend.get_key_for_task(kept.id))
    for ignored in (first, second):
        assert not redis_client.exists(backend.get_key_for_task(ignored.id))
