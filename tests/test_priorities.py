"""Message priorities on the Redis broker, as gwcelery configures them:
0 (and no priority) is served first, 9 last, and the volume rendering is
sent with 9."""
import pytest

from gwcelery import app
from gwcelery.tasks import skymaps
from gwcelery.util.waiting import wait_for

from .tasks import record

QUEUE = 'tests-priority'


def _priority_key(queue, priority):
    """The Redis list that kombu keeps for ``priority`` on ``queue``."""
    sep = app.conf.broker_transport_options.get('sep', '\x06\x16')
    return queue if priority == 0 else f'{queue}{sep}{priority}'


@pytest.mark.slow
def test_waiting_messages_run_in_priority_order(start_worker, redis_client):
    for i in range(3):
        record.apply_async(('order', f'low{i}'), queue=QUEUE, priority=9)
    record.apply_async(('order', 'mid'), queue=QUEUE, priority=5)
    record.apply_async(('order', 'default'), queue=QUEUE)
    # Each priority has a list of its own (priority_steps 0 to 9).
    assert redis_client.llen(_priority_key(QUEUE, 9)) == 3
    assert redis_client.llen(_priority_key(QUEUE, 5)) == 1
    assert redis_client.llen(QUEUE) == 1
    # As the deployment's openmp worker: one process, one message at a time.
    start_worker('priority', QUEUE, '-c', '1', '--prefetch-multiplier', '1')

    def order():
        values = redis_client.lrange('order', 0, -1)
        return len(values) == 5 and [v.decode() for v in values]

    assert wait_for(order, timeout=30, what='the five tasks') == [
        'default', 'mid', 'low0', 'low1', 'low2']


def test_volume_rendering_is_sent_with_the_lowest_priority(redis_client):
    assert skymaps.plot_volume.priority == skymaps.VOLUME_PRIORITY == 9
    skymaps.plot_volume.apply_async((b'', 'x.fits', 'G1'), queue=QUEUE)
    try:
        assert redis_client.llen(_priority_key(QUEUE, 9)) == 1
        assert redis_client.llen(QUEUE) == 0
    finally:
        redis_client.delete(_priority_key(QUEUE, 9))
