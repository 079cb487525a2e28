"""voevent.send through a real ``gwcelery worker -Q voevent -P solo`` and its
broadcaster, to pygcn's own client."""
import socket

import pytest

from gwcelery import app
from gwcelery.tasks import voevent
from gwcelery.util.waiting import wait_for
from gwcelery.vtp.server import parse_address

from .fixtures.gcn import sha256

pytestmark = pytest.mark.slow


def broadcaster_stats(hostname):
    stats = app.control.inspect([hostname], timeout=2).stats() or {}
    return stats.get(hostname, {}).get('voevent_broadcaster')


def test_send_reaches_pygcn_and_is_acked(redis_client, start_worker,
                                         pygcn_client, gcn_samples):
    worker = start_worker('voevent', 'voevent', '-P', 'solo')
    info = broadcaster_stats(worker.hostname)
    assert info['peers'] == []
    assert info['whitelist'] == ['127.0.0.1']
    client = pygcn_client(parse_address(info['address'])[1])
    (peer,) = wait_for(lambda: broadcaster_stats(worker.hostname)['peers'],
                       timeout=20, what='pygcn to subscribe')
    payload = gcn_samples['G298048-1-Initial.xml']

    result = voevent.send.delay(payload).get(timeout=30)

    assert result['ivorn'] == 'ivo://gwnet/gcn_sender#G298048-1-Initial'
    assert result['acked'] == [peer['peer']]
    received = wait_for(client.received, what='pygcn handler')
    assert [r['sha256'] for r in received] == [sha256(payload)]
    (peer,) = broadcaster_stats(worker.hostname)['peers']
    assert (peer['sent'], peer['acked']) == (1, 1)


def test_send_retries_until_a_subscriber_connects(redis_client, start_worker,
                                                  pygcn_client, gcn_samples):
    worker = start_worker('voevent', 'voevent', '-P', 'solo')
    port = parse_address(broadcaster_stats(worker.hostname)['address'])[1]
    payload = gcn_samples['G298048-1-Initial.xml']

    pending = voevent.send.delay(payload)
    wait_for(lambda: 'No subscriber to send to; retrying' in worker.log(),
             timeout=20, what='a retry')
    assert not pending.ready()
    client = pygcn_client(port)

    result = pending.get(timeout=60)
    assert len(result['acked']) == 1
    # pygcn acks before it calls its handler.
    received = wait_for(client.received, what='pygcn handler')
    assert [r['sha256'] for r in received] == [sha256(payload)]


def test_other_workers_run_no_broadcaster(redis_client, start_worker):
    worker = start_worker('general', 'celery')
    stats = app.control.inspect([worker.hostname], timeout=2).stats()
    assert 'voevent_broadcaster' not in stats[worker.hostname]
    assert 'pid' in stats[worker.hostname]


def test_voevent_worker_refuses_to_start_on_a_taken_port(redis_client,
                                                         start_worker):
    with socket.create_server(('127.0.0.1', 0)) as taken:
        port = taken.getsockname()[1]
        worker = start_worker(
            'voevent', 'voevent', '-P', 'solo', wait=False,
            env={'GWCELERY_TEST_VOEVENT_ADDRESS': f'127.0.0.1:{port}'})
        wait_for(lambda: worker.proc.poll() is not None, timeout=60,
                 what='the worker to exit')
    assert worker.proc.returncode != 0
    assert (f'The VOEvent broadcaster cannot listen on 127.0.0.1:{port}'
            in worker.log())
