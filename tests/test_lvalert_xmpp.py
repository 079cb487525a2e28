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

from gwcelery.lvalert.credentials import Credentials
from gwcelery.lvalert.publisher import Publisher
from gwcelery.lvalert.transports import parse_url
from gwcelery.lvalert.xmpp import XMPPListener

from .fixtures.lvalert import (
    DATA, GRACEDB_URL, LISTENER, PUBLISHER, load_sample, wait_listening,
    without_probes)
from .waiting import wait_for

pytestmark = pytest.mark.slow

#: Nodes of the test handlers (tests/lvalert_handlers.py), and one without.
NODES = ('test_gstlal', 'cbc_gstlal', 'superevent', 'test_superevent')
UNHANDLED = 'test_nobody_handles_this'


@pytest.fixture
def publisher(prosody, redis_client):
    with Publisher.from_url(prosody.url, *PUBLISHER) as publisher:
        for node in NODES + (UNHANDLED,):
            publisher.create_node(node)
        yield publisher


def _uid(alert):
    return alert['uid']


def _stanza_entry():
    """The JSON text of the captured LVAlert XMPP stanza."""
    tree = etree.parse(str(DATA / 'lvalert_xmpp.xml'))
    return tree.find('.//{http://jabber.org/protocol/pubsub}entry').text


def _subscribe_listener_user(prosody, node):
    """Subscribe the listener's account to a node no handler wants, as a
    stale subscription from an earlier configuration would be."""
    listener = XMPPListener(parse_url(prosody.url), Credentials(*LISTENER, 'test'))
    stop = threading.Event()
    thread = threading.Thread(target=listener.run,
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
    assert sorted(records, key=lambda r: _uid(r[1])) == sorted([
        ('event', event), ('event', json.loads(stanza_ours)),
        ('superevent', superevent), ('superevent', label),
    ], key=lambda r: _uid(r[1]))

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
    with Publisher.from_url(prosody.url, *PUBLISHER) as fresh:
        for alert in away:
            fresh.publish('cbc_gstlal', alert)
    assert 'LVAlert session 2' not in worker.log(), 'published too late'
    wait_for(lambda: 'LVAlert session 2 started' in worker.log(),
             timeout=60, what='the listener to reconnect')
    reconnected = time.monotonic() - restarted
    live = {'uid': 'G-live', 'alert_type': 'new'}
    publisher.publish('cbc_gstlal', live)

    def all_back():
        alerts = [a for _, a in lvalert_received()[before:]]
        return len(alerts) >= 6 and alerts
    alerts = wait_for(all_back, timeout=30, what='recovered and live items')
    time.sleep(0.5)
    alerts = [a for _, a in lvalert_received()[before:]]
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
        alerts = [a for _, a in lvalert_received()[probes:]]
        return len(alerts) >= 3 and alerts
    wait_for(back, timeout=60, what='the missed items')
    time.sleep(0.5)
    alerts = [a for _, a in lvalert_received()[probes:]]
    assert sorted(alerts, key=_uid) == sorted(missed, key=_uid)
