"""The listener task on the embedded (Redis Streams) transport, in real
worker and beat processes: samples reach their handlers, bad input is
survived, a restarted listener misses nothing, and a SIGKILLed worker's
listener moves to another worker without ever running twice."""
import os
import re
import signal
import time

import pytest

from gwcelery import app
from gwcelery.lvalert import transport
from gwcelery.util.waiting import wait_for

from .fixtures.lvalert import load_sample, wait_listening, without_probes

pytestmark = pytest.mark.slow

LISTEN = 'gwcelery.tasks.lvalert.listen'


@pytest.fixture
def publisher(redis_url, redis_client):
    with transport.from_url(redis_url) as publisher:
        yield publisher


def test_samples_reach_handlers_and_bad_input_is_survived(
        lvalert_listener, publisher, redis_url, lvalert_received):
    worker = lvalert_listener(redis_url)
    wait_listening(publisher, lvalert_received)

    event = load_sample('lvalert_event_creation.json')
    log_alert = load_sample('igwn_alert_psd.json')
    superevent = load_sample('igwn_alert_superevent_creation.json')
    label = load_sample('igwn_alert_superevent_label.json')
    foreign = load_sample('igwn_alert_superevent_creation.json',
                          gracedb_url='https://gracedb-other.example/api/')
    foreign['uid'] = 'S-foreign'

    publisher.publish_raw('cbc_gstlal', '{"uid": "G1", "alert_type":')
    publisher.publish_raw('cbc_gstlal', 'this is not JSON at all')
    publisher.publish_raw('cbc_gstlal', '[1, 2, 3]')
    publisher.publish_raw('superevent', '{"pad": "' + 'x' * (2 << 20) + '"}')
    publisher.publish('superevent', foreign)
    publisher.publish('test_nobody_handles_this', {'uid': 'G-unsubscribed'})
    publisher.publish('cbc_gstlal', event)
    publisher.publish('test_gstlal', log_alert)
    publisher.publish('superevent', superevent)
    publisher.publish('test_superevent', label)

    def four():
        records = without_probes(lvalert_received())
        return len(records) >= 4 and records
    records = wait_for(four, timeout=30, what='four alerts')
    time.sleep(0.5)  # would any stray dispatch still show up?
    records = without_probes(lvalert_received())
    assert sorted(records, key=_record_key) == sorted([
        ('event', event), ('event', log_alert),
        ('superevent', superevent), ('superevent', label),
    ], key=_record_key)

    log = worker.log()
    assert log.count('Dropping LVAlert item') == 4
    assert 'is not JSON' in log and 'not an object' in log
    assert 'exceeds the limit' in log
    assert 'its object https://gracedb-other.example/api/' in log
    # The listener is still the one that started.
    assert log.count('LVAlert listener on') == 1


def test_restarted_listener_misses_nothing(
        lvalert_listener, publisher, redis_url, lvalert_received):
    first = lvalert_listener(redis_url, name='first')
    wait_listening(publisher, lvalert_received)
    first.stop()  # warm shutdown: the listener is asked to stop

    published = [{'uid': f'G{n}', 'alert_type': 'new'} for n in range(20)]
    for alert in published:
        publisher.publish('cbc_gstlal', alert)

    second = lvalert_listener(redis_url, name='second', beat=False)

    def all_received():
        alerts = [a for _, a in without_probes(lvalert_received())]
        return len(alerts) >= len(published) and alerts
    alerts = wait_for(all_received, timeout=60, what='the missed alerts')
    # Each exactly once (handlers run concurrently, so in any order)...
    assert sorted(alerts, key=_uid) == sorted(published, key=_uid)
    # ...but dispatched in the order of publication.
    dispatched = re.findall(r'on node cbc_gstlal: new (G\d+)', second.log())
    assert dispatched == [a['uid'] for a in published]


def _uid(alert):
    return alert['uid']


def _record_key(record):
    handler, alert = record
    return handler, alert['uid'], alert['alert_type']


def _listener_hosts(hostnames):
    active = app.control.inspect(destination=hostnames, timeout=1.0).active()
    return sorted(host for host, tasks in (active or {}).items()
                  if any(task['name'] == LISTEN for task in tasks))


def test_sigkill_moves_listener_never_two(
        lvalert_listener, publisher, redis_url, lvalert_received):
    a = lvalert_listener(redis_url, name='alpha')
    b = lvalert_listener(redis_url, name='bravo', beat=False)
    hosts = [a.hostname, b.hostname]
    wait_listening(publisher, lvalert_received)
    running = wait_for(lambda: _listener_hosts(hosts), timeout=20,
                       what='the listener to show up')
    assert len(running) == 1
    victim, survivor = (a, b) if running == [a.hostname] else (b, a)

    # The whole worker, pool included, dies without warning.
    os.killpg(victim.pid, signal.SIGKILL)
    published = [{'uid': f'G-gap-{n}', 'alert_type': 'new'} for n in range(5)]
    for alert in published:
        publisher.publish('cbc_gstlal', alert)

    samples = []

    def taken_over():
        found = _listener_hosts([survivor.hostname])
        samples.append(found)
        alerts = [al for _, al in without_probes(lvalert_received())]
        return found and len(alerts) >= len(published) and alerts
    alerts = wait_for(taken_over, timeout=40, interval=0.5,
                      what='the survivor to take over')
    assert sorted(alerts, key=_uid) == sorted(published, key=_uid)
    assert all(len(found) <= 1 for found in samples)
    assert _listener_hosts(hosts) == [survivor.hostname]
