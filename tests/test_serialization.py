"""Task messages carry bytes, and nothing a worker accepts can run code."""
import pickle

import pytest
from kombu import Connection

from gwcelery import app
from gwcelery.util.waiting import wait_for

pytestmark = pytest.mark.slow

FITS_LIKE = bytes(range(256)) * 64          # not valid UTF-8
XML = '<?xml version="1.0"?><voe:VOEvent ivorn="ivo://x"/>'.encode()


def test_pickle_is_not_accepted():
    assert 'pickle' not in app.conf.accept_content
    assert 'pickle' not in app.conf.result_accept_content
    assert app.conf.task_serializer == 'json'


def test_bytes_round_trip_through_a_worker(redis_client, start_worker):
    start_worker('serialization', 'celery', '-c', '1')
    for payload in (FITS_LIKE, XML, {'skymap': FITS_LIKE, 'label': 'x'}):
        result = app.tasks['tests.tasks.echo'].delay(payload)
        assert result.get(timeout=30) == payload


def test_pickled_message_is_refused(redis_client, start_worker, tmp_path):
    """A pickle planted in the queue is discarded; its code never runs."""
    marker = tmp_path / 'pwned'
    worker = start_worker('pickle', 'celery', '-c', '1')

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    with Connection(app.conf.broker_url) as conn:
        producer = conn.Producer()
        producer.publish(
            pickle.dumps([[Exploit()], {}, {}]), routing_key='celery',
            headers={'task': 'tests.tasks.echo', 'id': 'evil-1',
                     'lang': 'py'},
            content_type='application/x-python-serialize',
            content_encoding='binary')

    wait_for(lambda: 'ContentDisallowed' in worker.log(),
             timeout=30, what='the worker to refuse the message')
    # The worker is still there and still works.
    assert app.tasks['tests.tasks.add'].delay(1, 2).get(timeout=30) == 3
    assert not marker.exists()
