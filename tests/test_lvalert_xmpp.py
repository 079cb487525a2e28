"""The listener task on XMPP publish-subscribe against a real prosody, in
real worker and beat processes: samples (including a captured XMPP stanza)
reach their handlers, bad input and foreign GraceDbs are survived, items
published while the listener was away (prosody restarted, or the listener
itself stopped) are recovered once each."""
import json
import threading
import time

import pytest
from lxml import etree

from gwcelery.lvalert import transport
from gwcelery.util.waiting import free_port, wait_for

from .fixtures.lvalert import (
    DATA, GRACEDB_URL, LISTENER, PUBLISHER, load_sample, wait_listening,
    without_probes)

pytestmark = pytest.mark.slow

#: Nodes of the test handlers (tests/lvalert_handlers.py), and one without.
NODES = ('test_gstlal', 'cbc_gstlal', 'superevent', 'test_superevent')
UNHANDLED = 'test_nobody_handles_this'


def _publisher(prosody, **options):
    """The XMPP transport as the admin who creates nodes and publishes."""
    username, password = PUBLISHER
    return transport.from_url(prosody.url, username=username,
                              password=password, **options)


def _listener(prosody, password=LISTENER[1], **options):
    """The XMPP transport as the plain user who listens."""
    return transport.from_url(prosody.url, username=LISTENER[0],
                              password=password, **options)


@pytest.fixture
def publisher(prosody, redis_client):
    with _publisher(prosody) as publisher:
        for node in NODES + (UNHANDLED,):
            publisher.create_node(node)
        yield publisher


def _uid(alert):
    return alert['uid']


def _record_key(record):
    handler, alert = record
    return handler, alert['uid'], alert['alert_type']


def _stanza_entry():
    """The JSON text of the captured LVAlert XMPP stanza."""
    tree = etree.parse(str(DATA / 'lvalert_xmpp.xml'))
    return tree.find('.//{http://jabber.org/protocol/pubsub}entry').text


def _subscribe_listener_user(prosody, node):
    """Subscribe the listener's account to a node no handler wants, as a
    stale subscription from an earlier configuration would be."""
    with _listener(prosody) as listener:
        stop = threading.Event()
        thread = threading.Thread(target=listener.listen,
                                  args=([node], lambda *a: None, stop.is_set))
        thread.start()
        assert listener.ready.wait(20)
        stop.set()
        thread.join(10)


def _wait_records(received, count, timeout=30):
    def enough():
        records = without_probes(received())
        return len(records) >= count and records
    return wait_for(enough, timeout=timeout, what=f'{count} records')


def test_xmpp_samples_and_bad_input(
        prosody, publisher, lvalert_listener, lvalert_received):
    _subscribe_listener_user(prosody, UNHANDLED)
    worker = lvalert_listener(prosody.url, netrc=prosody.netrc)
    wait_listening(publisher, lvalert_received)

    event = load_sample('lvalert_event_creation.json')
    superevent = load_sample('igwn_alert_superevent_creation.json')
    label = load_sample('igwn_alert_superevent_label.json')
    stanza_text = _stanza_entry()
    stanza_ours = stanza_text.replace('https://gracedb.ligo.org/api/',
                                      GRACEDB_URL)

    publisher.publish_raw('cbc_gstlal', '{"uid": "G1", "alert_type":')
    publisher.publish_raw('cbc_gstlal', 'plain text, not JSON')
    publisher.publish_raw('superevent', '[' * 50000 + ']' * 50000)
    publisher.publish_raw('cbc_gstlal', stanza_text)  # gracedb.ligo.org
    publisher.publish(UNHANDLED, {'uid': 'G-unhandled'})
    publisher.publish('cbc_gstlal', event)
    publisher.publish_raw('test_gstlal', stanza_ours)
    publisher.publish('superevent', superevent)
    publisher.publish('test_superevent', label)

    records = _wait_records(lvalert_received, 4)
    time.sleep(0.5)  # would any stray dispatch still show up?
    records = without_probes(lvalert_received())
    assert sorted(records, key=_record_key) == sorted([
        ('event', event), ('event', json.loads(stanza_ours)),
        ('superevent', superevent), ('superevent', label),
    ], key=_record_key)

    log = worker.log()
    assert log.count('Dropping LVAlert item') == 3
    assert 'nested too deeply' in log
    assert 'its object https://gracedb.ligo.org/api/events/M311486' in log
    assert f'on node {UNHANDLED}: no handler is registered' in log
    assert f'LVAlert user {LISTENER[0]} (credentials from netrc file' in log
    assert LISTENER[1] not in log and PUBLISHER[1] not in log
    assert log.count('LVAlert session 1 started') == 1
    assert 'LVAlert session 2' not in log


def test_xmpp_recovery_after_server_restart(
        prosody, publisher, lvalert_listener, lvalert_received):
    worker = lvalert_listener(prosody.url, netrc=prosody.netrc)
    wait_listening(publisher, lvalert_received)
    before = len(lvalert_received())

    restarted = time.monotonic()
    prosody.stop()
    # Once a reconnection attempt has failed, the next one is at least 3 s
    # away (back-off): items published now can only come back by retrieval.
    wait_for(lambda: 'Cannot connect to LVAlert server' in worker.log(),
             timeout=20, what='a failed reconnection attempt')
    prosody.start()
    away = [{'uid': f'G-away-{n}', 'alert_type': 'new'} for n in range(5)]
    with _publisher(prosody) as fresh:
        for alert in away:
            fresh.publish('cbc_gstlal', alert)
    assert 'LVAlert session 2' not in worker.log(), 'published too late'
    wait_for(lambda: 'LVAlert session 2 started' in worker.log(),
             timeout=60, what='the listener to reconnect')
    reconnected = time.monotonic() - restarted
    live = {'uid': 'G-live', 'alert_type': 'new'}
    publisher.publish('cbc_gstlal', live)

    def all_back():
        alerts = [a for _, a in without_probes(lvalert_received()[before:])]
        return len(alerts) >= 6 and alerts
    alerts = wait_for(all_back, timeout=30, what='recovered and live items')
    time.sleep(0.5)
    alerts = [a for _, a in without_probes(lvalert_received()[before:])]
    assert sorted(alerts, key=_uid) == sorted(away + [live], key=_uid)
    log = worker.log()
    assert 'recovered 5 items published while disconnected' in log
    print(f'listener back {reconnected:.1f} s after the restart began')


def test_xmpp_listener_restart_recovers_missed_items(
        prosody, publisher, lvalert_listener, lvalert_received):
    """The ids of delivered items live in Redis, so a new listener process
    fetches what was published while none ran, and nothing twice."""
    first = lvalert_listener(prosody.url, name='first', netrc=prosody.netrc)
    wait_listening(publisher, lvalert_received)
    first.stop()
    probes = len(lvalert_received())
    missed = [{'uid': f'G-missed-{n}', 'alert_type': 'new'}
              for n in range(3)]
    for alert in missed:
        publisher.publish('cbc_gstlal', alert)
    lvalert_listener(prosody.url, name='second', netrc=prosody.netrc,
                     beat=False)

    def back():
        alerts = [a for _, a in without_probes(lvalert_received()[probes:])]
        return len(alerts) >= 3 and alerts
    wait_for(back, timeout=60, what='the missed items')
    time.sleep(0.5)
    alerts = [a for _, a in without_probes(lvalert_received()[probes:])]
    assert sorted(alerts, key=_uid) == sorted(missed, key=_uid)


# -- the XMPP client parts in this process, against the real prosody ---------

def _listen_in_thread(listener, nodes, callback):
    stop = threading.Event()
    thread = threading.Thread(target=listener.listen,
                              args=(nodes, callback, stop.is_set))
    thread.start()
    return stop, thread


def test_xmpp_publisher_threads_share_one_connection(prosody):
    got = []
    listener = _listener(prosody)
    with _publisher(prosody) as publisher:
        publisher.create_node('threads')
        stop, thread = _listen_in_thread(
            listener, ['threads'], lambda node, item_id, text: got.append(
                (item_id, json.loads(text))))
        try:
            assert listener.ready.wait(20)
            ids = []

            def publish(n):
                for i in range(25):
                    ids.append(publisher.publish('threads', {'t': n, 'i': i}))
            threads = [threading.Thread(target=publish, args=(n,))
                       for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wait_for(lambda: len(got) >= 200, timeout=20, what='200 items')
        finally:
            stop.set()
            thread.join(10)
            listener.close()
    assert sorted(item_id for item_id, _ in got) == sorted(ids)
    assert {(a['t'], a['i']) for _, a in got} == {
        (n, i) for n in range(8) for i in range(25)}


def test_xmpp_oversized_item_fails_fast(prosody):
    """prosody drops a client that sends a stanza over its size limit: the
    publication fails at once with a clear message, without quoting the
    payload, and the publisher reconnects for the next one."""
    with _publisher(prosody, timeout=10) as publisher:
        started = time.monotonic()
        with pytest.raises(ConnectionError, match='size limit') as excinfo:
            publisher.publish('oversized', {'pad': 'x' * (1 << 20)})
        assert time.monotonic() - started < 5
        assert 'xxxxxxxx' not in str(excinfo.value)
        assert publisher.publish('oversized', {'uid': 'small'})


def test_xmpp_wrong_password_is_retried_and_not_logged(prosody, caplog):
    secret = 'wrong-password-do-not-log'
    listener = _listener(prosody, password=secret, max_backoff=0.5)
    stop, thread = _listen_in_thread(listener, ['test_gstlal'],
                                     lambda *a: None)
    try:
        wait_for(lambda: caplog.text.count('refused the credentials') >= 2,
                 timeout=30, what='two refused logins')
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert not listener.ready.is_set()
    assert secret not in caplog.text


def test_xmpp_unreachable_server_is_retried(caplog):
    listener = transport.from_url(f'xmpp://u:p@localhost:{free_port()}',
                                  max_backoff=0.5)
    stop, thread = _listen_in_thread(listener, ['x'], lambda *a: None)
    try:
        wait_for(lambda: caplog.text.count('Cannot connect') >= 2,
                 timeout=30, what='two failed connections')
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_xmpp_publisher_needs_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv('NETRC', str(tmp_path / 'missing-netrc'))
    with pytest.raises(RuntimeError, match='machine localhost'):
        transport.from_url('xmpp://localhost:5222')


def test_xmpp_tls_required_off_loopback():
    import slixmpp

    from gwcelery.lvalert.transport.xmpp_client import configure
    for host, loopback in (('localhost', True), ('127.0.0.1', True),
                           ('192.0.2.1', False)):
        client = slixmpp.ClientXMPP('u@example.org', 'p')
        configure(client, host, 10)
        assert client.enable_starttls is (not loopback)
        assert client.enable_plaintext is loopback
        assert client.plugin['feature_mechanisms'].unencrypted_scram is loopback


def _kept(publisher, node):
    connection = publisher._connected_publisher()
    client = connection._client

    async def ids():
        result = await client.plugin['xep_0060'].get_items(
            client.pubsub, node, max_items=1000)
        return [item['id'] for item in result['pubsub']['items']]
    return connection._call(ids())


def test_xmpp_nodes_keep_what_listeners_can_recover(prosody):
    """Nodes created by the publisher keep as many items as the server
    allows (prosody here: 100), not prosody's default of 20."""
    with _publisher(prosody) as publisher:
        ids = [publisher.publish('keeps_max', {'i': i}) for i in range(120)]
        assert _kept(publisher, 'keeps_max') == ids[-100:]
    with _publisher(prosody, node_max_items=None) as publisher:
        ids = [publisher.publish('keeps_default', {'i': i})
               for i in range(30)]
        assert _kept(publisher, 'keeps_default') == ids[-20:]


def test_xmpp_server_refuses_entity_declarations(prosody):
    """Hostile XML (a DTD declaring expanding entities) never reaches a
    listener: the server ends such a stream before any stanza is routed.
    This is prosody's behaviour, which the listener relies on."""
    import socket
    with socket.create_connection(('127.0.0.1', prosody.port), 5) as sock:
        sock.sendall(
            b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<stream:stream xmlns="jabber:client" xmlns:stream='
            b'"http://etherx.jabber.org/streams" to="localhost" '
            b'version="1.0">&b;')
        data = b''
        while chunk := sock.recv(4096):
            data += chunk
    assert b'<not-well-formed' in data
    assert b'aaaaaaaa' not in data


def test_xmpp_items_of_a_node_created_after_the_listener_are_delivered(
        prosody):
    """A node that does not exist when the listener starts (the first
    event of a pipeline on a fresh server) is subscribed to once it
    appears, and the items published on it meanwhile are delivered, not
    skipped as older than the listener."""
    import uuid
    node = f'born-late-{uuid.uuid4().hex[:8]}'
    got = []
    listener = _listener(prosody)
    listener.resubscribe_interval = 0.5
    stop, thread = _listen_in_thread(
        listener, [node], lambda n, item_id, text: got.append(item_id))
    try:
        assert listener.ready.wait(20)
        with _publisher(prosody) as publisher:
            ids = [publisher.publish(node, {'uid': f'G{i}'})
                   for i in range(2)]
        wait_for(lambda: len(got) >= 2, timeout=20,
                 what='the items of the new node')
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    assert got == ids
