"""A worker of a dedicated queue that starts takes back at once what a
killed worker of that queue held (:mod:`gwcelery.redelivery`), instead of
after the ten-minute visibility timeout."""
import os
import signal
import uuid

import pytest

from gwcelery import app
from gwcelery.util.waiting import wait_for

from tests.tasks import long_first_run, record

pytestmark = pytest.mark.slow


def _kill(service):
    """SIGKILL the worker with its pool: nothing acknowledged or given
    back."""
    os.killpg(service.pid, signal.SIGKILL)
    service.proc.wait()


@pytest.mark.parametrize('queue, handed_back', [
    ('openmp', True), ('celery', False)])
def test_restarted_worker_takes_back_what_the_killed_one_held(
        redis_client, start_worker, queue, handed_back):
    # The test configuration keeps gwcelery's visibility timeout (600 s):
    # a message that comes back within the test came back by the hand-back.
    assert app.conf.broker_transport_options['visibility_timeout'] >= 600
    key = f'tests:redelivery:{uuid.uuid4().hex}'
    options = ('-c', '1', '--prefetch-multiplier', '1')
    first = start_worker(f'{queue}-first', queue, *options)
    long_first_run.apply_async((key, 300), queue=queue)
    wait_for(lambda: redis_client.llen(key) == 1, timeout=60,
             what='the task to start')
    _kill(first)
    second = start_worker(f'{queue}-second', queue, *options)
    if handed_back:
        wait_for(lambda: redis_client.llen(key) == 2, timeout=30,
                 what='the task to run again')
        assert (f'Handed back 1 message(s) of the {queue} queue'
                in second.log())
    else:
        # Queues outside redelivery_sole_consumer_queues keep Celery's
        # behaviour: the message waits for the visibility timeout.
        # A task sent now runs after anything put back at the head of the
        # queue: once it has run, nothing was.
        probe = f'{key}:probe'
        record.apply_async((probe, 'after'), queue=queue)
        wait_for(lambda: redis_client.llen(probe) == 1, timeout=30,
                 what='the probe task to run')
        assert redis_client.llen(key) == 1
        assert 'Handed back' not in second.log()
