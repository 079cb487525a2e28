"""The local GCN feed (``gwcelery gcn feed``) and ``gwcelery gcn replay``,
as real processes, with pygcn's client and with the real listener."""

import os
import re
import signal

import pytest

from gwcelery.util.waiting import free_port, wait_for
from gwcelery.vtp.feed import QUEUE_KEY, SENDING_KEY

from .fixtures.gcn import DATA, gcn_env, replay, sha256

pytestmark = pytest.mark.slow


def listeners_connected(feed, count):
    return feed.log().count('subscriber 127.0.0.1:') >= count


def test_replay_checks_every_file_first(redis_client, tmp_path):
    bad = tmp_path / 'bad.xml'
    bad.write_bytes(b'<not-a-voevent/>')
    result = replay(DATA / 'snews_gcn.xml', bad)
    assert result.returncode != 0
    assert 'bad.xml: not a usable notice: not a VOEvent' in result.stderr
    assert redis_client.llen(QUEUE_KEY) == 0


def test_feed_serves_every_listener_with_acks(redis_client, gcn_feed,
                                             pygcn_client, gcn_samples):
    port = free_port()
    feed = gcn_feed(port)
    # Queued before anyone listens: kept until a listener connects.
    result = replay(DATA / 'fermi_grb_gcn.xml')
    assert result.returncode == 0, result.stderr
    assert 'Queued 1 notice(s)' in result.stdout
    assert redis_client.llen(QUEUE_KEY) == 1
    first = pygcn_client(port)
    received = wait_for(first.received, timeout=20, what='the first listener')
    assert [r['sha256'] for r in received] == [
        sha256(gcn_samples['fermi_grb_gcn.xml'])]
    assert redis_client.llen(QUEUE_KEY) == 0

    second = pygcn_client(port)
    wait_for(lambda: 'connected (2 connected)' in feed.log(), timeout=20,
             what='the second listener')
    assert replay(DATA / 'swift_grb_gcn.xml').returncode == 0
    for client in (first, second):
        wait_for(lambda: len(client.received()) == (
            2 if client is first else 1), what='the Swift notice')
        assert client.received()[-1]['sha256'] == sha256(
            gcn_samples['swift_grb_gcn.xml'])
    wait_for(lambda: re.search(
        r'BAT_GRB_Pos_1123129-022; acknowledged by 127\.0\.0\.1:\d+, '
        r'127\.0\.0\.1:\d+\n', feed.log()), what='acks from both')
    assert 'Served ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_1123129-022 to 2 ' \
        'listener(s)' in feed.log()


def test_listener_reconnects_after_the_feed_restarts(
        redis_client, gcn_feed, start_worker, start_beat, gcn_received,
        gcn_samples):
    port = free_port()
    feed = gcn_feed(port)
    env = gcn_env(port)
    worker = start_worker('general', 'celery', '-c', '6', env=env)
    start_beat(env=env)
    wait_for(lambda: 'connected (1 connected)' in feed.log(), timeout=30,
             what='the listener to connect')
    assert replay(DATA / 'fermi_grb_gcn.xml').returncode == 0
    wait_for(lambda: [r['handler'] for r in gcn_received()] == ['fermi'],
             timeout=30, what='the Fermi notice to be handled')

    assert feed.stop() == 0
    assert 'GCN feed stopped' in feed.log()
    # The hang-up, then a refused reconnection: one warning line each.
    hang_up = re.compile(r'WARNING/gwcelery\.tasks\.gcn\.listen-child\] '
                         r'socket error: .*(reset|closed) by peer\n')
    refused = re.compile(
        r'WARNING/gwcelery\.tasks\.gcn\.listen-child\] could not connect '
        rf'to 127\.0\.0\.1:{port}, will retry in \d+ seconds: '
        r'\[Errno 111\] Connection refused\n')
    wait_for(lambda: hang_up.search(worker.log()), timeout=10,
             what='the hang-up in the worker log')
    wait_for(lambda: refused.search(worker.log()), timeout=10,
             what='a refused connection in the worker log')
    # Replayed while the feed is down: waits in Redis.
    assert replay(DATA / 'snews_gcn.xml').returncode == 0
    feed = gcn_feed(port)
    # pygcn retries after 2 s here (gcn_max_reconnect_timeout in tests).
    wait_for(lambda: [r['handler'] for r in gcn_received()] == [
        'fermi', 'snews'], timeout=30, what='the SNEWS notice after restart')
    assert gcn_received()[1]['sha256'] == sha256(gcn_samples['snews_gcn.xml'])
    # Nor does a warm shutdown, which stops the listener's child with SIGINT.
    worker.stop()
    log = worker.log()
    assert 'Child process of gwcelery.tasks.gcn.listen exited with code 0' \
        in log
    assert 'Traceback' not in log
    assert 'ERROR/' not in log


def test_notices_wait_while_the_listener_fails_over(
        redis_client, gcn_feed, start_worker, start_beat, gcn_received,
        gcn_samples):
    port = free_port()
    feed = gcn_feed(port)
    env = gcn_env(port)
    first = start_worker('first', 'celery', '-c', '6', env=env)
    start_beat(env=env)
    wait_for(lambda: 'connected (1 connected)' in feed.log(), timeout=30,
             what='the listener to connect')
    # The whole worker dies at once, as in a crash: no warm shutdown, the
    # listener's lock is left to expire.
    os.killpg(first.pid, signal.SIGKILL)
    wait_for(lambda: '(0 connected)' in feed.log(), timeout=30,
             what='the feed to notice')
    assert replay(DATA / 'swift_grb_gcn.xml').returncode == 0
    assert redis_client.llen(QUEUE_KEY) == 1

    start_worker('second', 'celery', '-c', '6', env=env)
    wait_for(lambda: [r['handler'] for r in gcn_received()] == ['swift'],
             timeout=60, what='the notice, once the listener runs again')
    assert gcn_received()[0]['sha256'] == sha256(
        gcn_samples['swift_grb_gcn.xml'])
    assert redis_client.llen(QUEUE_KEY) == 0


def test_feed_resends_what_it_was_sending_when_killed(
        redis_client, gcn_feed, pygcn_client, gcn_samples):
    # As a feed killed while sending leaves it: the notice in the list of
    # notices being sent, and another still queued behind it.
    redis_client.rpush(SENDING_KEY, gcn_samples['snews_gcn.xml'])
    redis_client.rpush(QUEUE_KEY, gcn_samples['swift_grb_gcn.xml'])
    port = free_port()
    feed = gcn_feed(port)
    client = pygcn_client(port)
    received = wait_for(lambda: len(client.received()) == 2 and
                        client.received(), timeout=20, what='both notices')
    assert [r['sha256'] for r in received] == [
        sha256(gcn_samples['snews_gcn.xml']),
        sha256(gcn_samples['swift_grb_gcn.xml'])]
    assert 'Re-queued 1 notice(s)' in feed.log()
    wait_for(lambda: redis_client.llen(SENDING_KEY) == 0)
    assert redis_client.llen(QUEUE_KEY) == 0
