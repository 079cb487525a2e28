"""Notices from upload to GCN and back, through real processes.

One stack for the module (:mod:`tests.fixtures.alerts`): every worker of
the deployment, the local GCN feed subscribed to our broadcaster, pygcn's
client as a subscriber, the session's local GraceDb. :func:`scenario`
starts every candidate at once, so that they run side by side:

* the bank event :data:`BANK`, localized for real (the one BAYESTAR run of
  the module);
* synthetic events (coinc.xml without PSD) to which the tests give the
  committed sky map themselves: the ADVOK/PE_READY/by hand/ADVNO sequence,
  a second preliminary notice, MDC and Test superevents, the two bank
  events whose FAR is above the public-alert threshold, two candidates
  whose notice worker is SIGKILLed in the middle of the chain (one just
  after GraceDb created its VOEvent and before the worker heard of it, one
  while it downloaded it), and one whose first GraceDb requests fail.

The tests then read what the pipeline did: what pygcn received, GraceDb's
VOEvents, labels and logs, the timeline. Log lines are looked for from
``"] S…:"``, since ``"S240518a:"`` is also in ``"MS240518a:"``.
"""
import re
import subprocess
import sys
import threading
import time

import pytest
import voeventparse
from gcn import NoticeType

from gwcelery import notice_records, timeline
from gwcelery.lvalert import transport
from gwcelery.tasks import voevent
from gwcelery.util.waiting import wait_for

from .fixtures.gcn import replay, voevent as make_voevent
from .fixtures.products import SKYMAP_PATH
from .fixtures.skymaps import bank_event
from .fixtures.superevents import fresh_time

pytestmark = pytest.mark.slow

#: The bank event localized for real.
BANK = 'bns_hl_2'

#: Bank events whose FAR × trials factor is above the threshold.
UNPUBLISHABLE = ('bns_hl_3', 'bbh_hl_3')

SKYMAP = SKYMAP_PATH.read_bytes()


class Scenario:
    """What :func:`scenario` started: superevent ids by role."""


def _hold(stack, scenario):
    """Hold two of the notice worker's GraceDb requests until it is killed:
    the answer to creating the VOEvent of ``scenario.adopt``, and the
    download of the VOEvent of ``scenario.resume``."""
    def match(method, path):
        return ((method == 'POST'
                 and f'/superevents/{scenario.adopt}/voevents' in path)
                or (method == 'GET' and f'/{scenario.resume}-1-Preliminary'
                    in path))
    stack.proxy.fail(2, 120.0, match=match, after=True)


def _synthetic(stack, skymap=True, **kwargs):
    graceid = stack.upload_synthetic(fresh_time(), **kwargs)
    sid = stack.superevent_of(graceid)
    if skymap:
        stack.give_skymap(graceid, SKYMAP)
    return graceid, sid


def _publish_twice_at_once(stack, node, alert):
    """Publish the same alert twice, from two threads released together."""
    barrier = threading.Barrier(2)

    def publish():
        with transport.from_url(stack.redis_url) as publisher:
            barrier.wait()
            publisher.publish(node, alert)

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture(scope='module')
def scenario(alert_stack):
    stack = alert_stack
    r = Scenario()
    # The real pipeline first: its localization is the longest wait.
    _, coinc, psd = bank_event(BANK)
    r.bank_event = stack.upload(coinc)
    stack.client.write_log(r.bank_event, 'psd', filename='psd.xml.gz',
                           filecontents=psd, tag_name=['psd'])
    r.bank = stack.superevent_of(r.bank_event)

    # The kills: sky maps given only once the holds are in place.
    r.adopt_event, r.adopt = _synthetic(stack, skymap=False)
    r.resume_event, r.resume = _synthetic(stack, skymap=False)
    _hold(stack, r)
    stack.give_skymap(r.adopt_event, SKYMAP)
    stack.give_skymap(r.resume_event, SKYMAP)
    # The kill, once both requests are held (both of the worker's
    # processes are then stuck: nothing else moves on that queue).
    wait_for(lambda: stack.proxy.failed == 2, timeout=60,
             what='the notice worker to reach both held requests')
    stack.kill(stack.notices_workers[0])
    stack.start_notices_worker(wait=False)

    # GraceDb fails the notice worker's first requests about a superevent.
    graceid, r.outage = _synthetic(stack, skymap=False)
    stack.proxy.fail(4, 503, match=lambda method, path:
                     f'/superevents/{r.outage}/' in path)
    stack.give_skymap(graceid, SKYMAP)

    # Two 'new' alerts at once, besides GraceDb's own.
    graceid = stack.upload_synthetic(fresh_time())
    r.race = stack.superevent_of(graceid)
    _publish_twice_at_once(stack, 'superevent', {
        'uid': r.race, 'alert_type': 'new', 'data': {},
        'object': stack.client.superevent(r.race).json()})
    stack.give_skymap(graceid, SKYMAP)

    r.advocate_event, r.advocate = _synthetic(stack)
    r.mdc_event, r.mdc = _synthetic(stack, search='MDC')
    r.test_event, r.test = _synthetic(stack, group='Test')
    r.unpublishable = {}
    for name in UNPUBLISHABLE:
        _, coinc, _ = bank_event(name)
        graceid = stack.upload(coinc)  # no PSD: no localization
        stack.give_skymap(graceid, SKYMAP)
        r.unpublishable[name] = stack.superevent_of(graceid)

    # A louder event, complete only once the first preliminary notice has
    # taken the first: the preferred event changes before the clean-up.
    _, r.second = _synthetic(stack, snr=10.0)
    wait_for(lambda: notice_records.get(r.second, 'preliminary-1').get(
        'preferred_event'), timeout=60, what='the first preliminary notice')
    t_0 = stack.client.superevent(r.second).json()['t_0']
    r.louder = stack.upload_synthetic(t_0 + 0.01, snr=14.0)
    stack.give_skymap(r.louder, SKYMAP)
    stack.notices_workers[-1].wait_ready()
    return r


def _params(payload):
    """``(VOEvent, {name: value} of the top-level params, {group name or
    type: {name: value}})``."""
    event = voeventparse.loads(payload)
    top = {k: v['value'] for k, v in
           voeventparse.get_toplevel_params(event).items()}
    groups = {group.get('name') or group.get('type'): {
        param.get('name'): param.get('value') for param in group.Param}
        for group in event.What.iterchildren('Group')}
    return event, top, groups


def _only_notice(stack, sid, timeout=120):
    notices = stack.wait_notices(sid, 1, timeout=timeout)
    assert len(notices) == 1, [n['ivorn'] for n in notices]
    return notices[0]


def _json_file(stack, object_id, name):
    import json
    return json.loads(stack.client.files(object_id, name).read())


# -- the preliminary notice of a bank event -----------------------------------

def test_bank_event_preliminary_notice(alert_stack, scenario):
    stack, sid = alert_stack, scenario.bank
    notice = _only_notice(stack, sid, timeout=180)
    assert notice['ivorn'] == f'ivo://gwnet/LVC#{sid}-1-Preliminary'
    event, top, groups = _params(notice['payload'])
    assert voeventparse.valid_as_v2_0(event)
    assert event.attrib['role'] == 'observation'
    graceid = scenario.bank_event
    gw = stack.client.event(graceid).json()
    assert top['GraceID'] == sid
    assert top['AlertType'] == 'Preliminary'
    assert top['Packet_Type'] == '150'
    assert float(top['FAR']) == gw['far']
    assert top['Instruments'] == 'H1,L1'
    # The sky map of the notice is the event's BAYESTAR map, copied.
    url = groups['bayestar']['skymap_fits']
    assert url.endswith(f'/api/superevents/{sid}/files/'
                        'bayestar.multiorder.fits')
    assert stack.client.files(sid, 'bayestar.multiorder.fits').read() == \
        stack.client.files(graceid, 'bayestar.multiorder.fits').read()
    p_astro = _json_file(stack, graceid, 'p_astro.json')
    em_bright = _json_file(stack, graceid, 'em_bright.json')
    assert {k: float(v) for k, v in groups['Classification'].items()} == \
        pytest.approx(p_astro)
    assert float(groups['Properties']['HasNS']) == em_bright['HasNS']
    # What pygcn got is GraceDb's file, byte for byte.
    voevents = stack.voevents(sid)
    assert len(voevents) == 1
    assert notice['payload'] == stack.client.files(
        sid, voevents[0]['filename']).read()


def test_bank_superevent_labels_and_copies(alert_stack, scenario):
    stack, sid = alert_stack, scenario.bank
    _only_notice(stack, sid, timeout=180)
    wait_for(lambda: {'SKYMAP_READY', 'EMBRIGHT_READY', 'PASTRO_READY',
                      'GCN_PRELIM_SENT', 'ADVREQ'} <= set(stack.labels(sid)),
             timeout=30, what='the labels of the copies and the notice')
    copies = [e['comment'] for e in stack.logs(sid)
              if e['comment'].startswith('Copied from')]
    assert sorted(copies) == sorted(
        f'Copied from {scenario.bank_event}: {name},0' for name in
        ('bayestar.multiorder.fits', 'em_bright.json', 'p_astro.json'))


def test_echo_of_a_notice_matches(alert_stack, scenario):
    stack, sid = alert_stack, scenario.bank
    _only_notice(stack, sid, timeout=180)
    voevent_file = stack.voevents(sid)[0]['filename']

    def tagged():
        return [e for e in stack.logs(sid) if e['filename'] == voevent_file
                and 'gcn_received' in e['tag_names']]

    wait_for(tagged, timeout=30, what='the echo to be checked')
    assert 'GCN_MISMATCH' not in stack.labels(sid)
    assert timeline.stages(sid)['preliminary-1/echo_checked']['detail'] == \
        'match'


#: Stages of the bank event's way to its echo: two chains that join, each
#: in the order its stages happen.
CHAINS = (
    [('event', 'alert_received'), ('superevent', 'alert_received'),
     ('preliminary-1', 'preferred_event'),
     ('preliminary-1', 'products_ready')],
    [('event', 'alert_received'), ('event', 'localization_started'),
     ('event', 'localization_finished'), ('event', 'skymap_uploaded'),
     ('preliminary-1', 'products_ready'),
     ('preliminary-1', 'products_copied'),
     ('preliminary-1', 'voevent_created'), ('preliminary-1', 'sent'),
     ('preliminary-1', 'acked'), ('preliminary-1', 'echo_checked')])


def _bank_timeline(stack, scenario):
    def written():
        try:
            doc = _json_file(stack, scenario.bank, timeline.FILENAME)
        except Exception:
            return None
        stages = {e['stage'] for e in doc['stages']
                  if e['notice'] == 'preliminary-1'}
        wanted = {stage for chain in CHAINS for who, stage in chain
                  if who == 'preliminary-1'}
        return doc if wanted <= stages else None

    # Stages are recorded by whoever does them: the echo may be checked
    # before the notice worker records that the notice was sent.
    return wait_for(written, timeout=180, interval=0.5,
                    what='the timeline with every stage of the notice')


def _first(doc, scenario, who, stage):
    entries = [e for e in doc['stages'] if e['stage'] == stage and (
        e['object'] == scenario.bank_event if who == 'event'
        else e['object'] == scenario.bank and e['notice'] == (
            None if who == 'superevent' else who))]
    assert entries, (who, stage)
    return min(e['time'] for e in entries)


def test_timeline_holds_every_stage_in_order(alert_stack, scenario):
    doc = _bank_timeline(alert_stack, scenario)
    for chain in CHAINS:
        times = [_first(doc, scenario, who, stage) for who, stage in chain]
        assert times == sorted(times), list(zip(chain, times))
    # GraceDb's upload time is to the second: it may come after the alert.
    assert _first(doc, scenario, 'event', 'uploaded') <= _first(
        doc, scenario, 'event', 'alert_received') + 1
    acks = [e for e in doc['stages'] if e['stage'] == 'acked'
            and e['notice'] == 'preliminary-1']
    assert len(acks) == 2  # pygcn and the feed


def test_timeline_command_and_page(alert_stack, scenario):
    stack = alert_stack
    _bank_timeline(stack, scenario)
    result = subprocess.run(
        [sys.executable, '-m', 'gwcelery', 'alerts', 'timeline',
         scenario.bank], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f'Latency timeline of {scenario.bank}, from timeline.json' in \
        result.stdout
    for text in ('BAYESTAR finished', 'preliminary-1: sent',
                 'preliminary-1: GCN echo checked'):
        assert text in result.stdout
    import requests
    root = stack.gracedb_url[:-len('api/')]
    page = requests.get(f'{root}superevents/{scenario.bank}/view/',
                        timeout=10).text
    assert '<h2>Latency timeline</h2>' in page
    assert 'preliminary-1: acknowledged by 127.0.0.1:' in page


# -- people's labels ----------------------------------------------------------

def test_initial_update_and_retraction(alert_stack, scenario):
    stack, sid = alert_stack, scenario.advocate
    _only_notice(stack, sid)
    stack.client.write_label(sid, 'ADVOK')
    initial = stack.wait_notices(sid, 2)[1]
    event, top, groups = _params(initial['payload'])
    assert voeventparse.valid_as_v2_0(event)
    assert top['AlertType'] == 'Initial' and top['Packet_Type'] == '151'
    assert 'bayestar' in groups and 'Classification' in groups

    # Parameter estimation: a sky map of the superevent, then PE_READY.
    stack.client.write_log(sid, 'PE sky map', filename=(
        'bilby.multiorder.fits'), filecontents=SKYMAP, tag_name=['sky_loc'])
    stack.client.write_label(sid, 'PE_READY')
    update = stack.wait_notices(sid, 3)[2]
    _, top, groups = _params(update['payload'])
    assert top['AlertType'] == 'Update' and top['Packet_Type'] == '152'
    assert groups['bilby']['skymap_fits'].endswith(
        f'/superevents/{sid}/files/bilby.multiorder.fits')

    # By hand: that sky map had its update; a new version gets one.
    def send_update():
        return subprocess.run(
            [sys.executable, '-m', 'gwcelery', 'alerts', 'send-update', sid],
            capture_output=True, text=True, timeout=120)

    again = send_update()
    assert again.returncode == 0, again.stderr
    assert 'update:bilby.multiorder.fits,0 was sent before' in again.stdout
    # (Without PE_READY, so that the upload itself sends no update.)
    stack.client.remove_label(sid, 'PE_READY')
    stack.client.write_log(sid, 'PE sky map, again', filename=(
        'bilby.multiorder.fits'), filecontents=SKYMAP, tag_name=['sky_loc'])
    by_hand = send_update()
    assert by_hand.returncode == 0, by_hand.stderr
    assert 'Sent ivo://gwnet/LVC#' in by_hand.stdout
    assert len(stack.wait_notices(sid, 4)) == 4

    stack.client.write_label(sid, 'ADVNO')
    notices = stack.wait_notices(sid, 5)
    event, top, _ = _params(notices[4]['payload'])
    assert top['AlertType'] == 'Retraction' and top['Packet_Type'] == '164'
    cited = [c.text for c in event.Citations.EventIVORN]
    assert cited == [n['ivorn'] for n in notices[:4]]
    assert [v['voevent_type'] for v in stack.voevents(sid)] == [
        'PR', 'IN', 'UP', 'UP', 'RE']


def test_redelivered_alerts_send_nothing_more(alert_stack, scenario):
    stack, sid = alert_stack, scenario.advocate
    wait_for(lambda: len(stack.received(sid)) == 5, timeout=120,
             what='the advocate sequence to finish')
    superevent = stack.client.superevent(sid).json()
    before = stack.log('general').count(f'] {sid}: initial notice already')
    with transport.from_url(stack.redis_url) as publisher:
        for _ in range(2):
            publisher.publish('superevent', {
                'uid': sid, 'alert_type': 'new', 'data': {},
                'object': superevent})
            publisher.publish('superevent', {
                'uid': sid, 'alert_type': 'label_added',
                'data': {'name': 'ADVOK'}, 'object': superevent})
    wait_for(lambda: stack.log('general').count(
        f'] {sid}: initial notice already') >= before + 2
        and stack.log('general').count(
            f'] {sid}: preliminary-timer already') >= 2,
        timeout=30, what='the repeated alerts to be handled')
    assert len(stack.received(sid)) == 5
    assert len(stack.voevents(sid)) == 5


# -- exactly once under faults ------------------------------------------------

def test_two_new_alerts_at_once_send_one_notice(alert_stack, scenario):
    stack, sid = alert_stack, scenario.race
    _only_notice(stack, sid)
    assert len(stack.voevents(sid)) == 1
    assert stack.log('general').count(f'] {sid}: preliminary notice in') == 1


@pytest.mark.parametrize('role', ['adopt', 'resume'])
def test_killed_notice_worker_sends_once(alert_stack, scenario, role):
    stack = alert_stack
    sid = getattr(scenario, role)
    notice = _only_notice(stack, sid)
    assert notice['ivorn'] == f'ivo://gwnet/LVC#{sid}-1-Preliminary'
    assert len(stack.voevents(sid)) == 1
    # The task of the killed worker came back and finished in another.
    log = stack.log('notices1')
    assert f'] {sid}: sending' in log
    if role == 'adopt':
        assert f'] {sid}: preliminary-1 adopts VOEvent' in log


def test_notice_outlives_gracedb_failures(alert_stack, scenario):
    stack, sid = alert_stack, scenario.outage
    _only_notice(stack, sid)
    assert stack.proxy.failed == 4
    assert len(stack.voevents(sid)) == 1
    assert re.search(r"gwcelery\.tasks\.notices\.\w+ failed \(GraceDbError: "
                     r"\(503, 'injected failure'.*\)\); retry 4 of unlimited",
                     stack.log('notices'))


def test_voevent_sent_once_per_ivorn(alert_stack):
    stack = alert_stack
    ivorn = f'ivo://tests/once#{time.time()}'
    # A type that no handler takes (the feed serves it to the listener).
    payload = make_voevent(ivorn, NoticeType.TEST_COORDS)
    first = voevent.send.delay(payload, once=True).get(timeout=30)
    second = voevent.send.delay(payload, once=True).get(timeout=30)
    assert not first.get('repeated') and second['repeated']
    assert second['acked'] == first['acked'] and len(first['acked']) == 2
    assert [r['ivorn'] for r in stack.subscriber.received()].count(ivorn) == 1


# -- what is not sent, and where ----------------------------------------------

@pytest.mark.parametrize('name', UNPUBLISHABLE)
def test_unpublishable_candidate_gets_products_and_no_notice(
        alert_stack, scenario, name):
    stack, sid = alert_stack, scenario.unpublishable[name]
    entry = stack.wait_log(sid, 'No preliminary-1 notice:')
    assert 'is not publishable: FAR' in entry['comment']
    wait_for(lambda: 'PASTRO_READY' in stack.labels(sid), timeout=30,
             what='the labels of the copies')
    labels = set(stack.labels(sid))
    assert {'SKYMAP_READY', 'EMBRIGHT_READY'} <= labels
    assert not labels & {'GCN_PRELIM_SENT', 'ADVREQ'}
    assert not stack.voevents(sid)
    assert not stack.received(sid)


def test_test_superevents_are_never_sent(alert_stack, scenario):
    stack, sid = alert_stack, scenario.test
    assert sid.startswith('TS')
    entry = stack.wait_log(sid, 'No preliminary-1 notice:')
    assert 'Test superevents are never sent' in entry['comment']
    assert not stack.voevents(sid) and not stack.received(sid)


def test_mdc_notices_are_tests(alert_stack, scenario):
    stack, sid = alert_stack, scenario.mdc
    assert sid.startswith('MS')
    event, _, _ = _params(_only_notice(stack, sid)['payload'])
    assert event.attrib['role'] == 'test'
    assert voeventparse.valid_as_v2_0(event)


def test_second_preliminary_after_a_new_preferred_event(alert_stack,
                                                        scenario):
    stack, sid = alert_stack, scenario.second
    notices = stack.wait_notices(sid, 2, timeout=60)
    assert [n['ivorn'] for n in notices] == [
        f'ivo://gwnet/LVC#{sid}-{n}-Preliminary' for n in (1, 2)]
    first = notice_records.get(sid, 'preliminary-1')['preferred_event']
    assert notice_records.get(sid, 'preliminary-2')['preferred_event'] == \
        scenario.louder != first
    assert f'Copied from {scenario.louder}: bayestar.multiorder.fits,0' in [
        e['comment'] for e in stack.logs(sid)]
    # Its sky map is the new copy.
    assert stack.client.files(sid, 'bayestar.multiorder.fits,1').read() == \
        SKYMAP


def test_no_second_preliminary_when_the_preferred_event_stays(alert_stack,
                                                              scenario):
    stack, sid = alert_stack, scenario.mdc
    _only_notice(stack, sid)
    wait_for(lambda: f'] {sid}: the preferred event is still' in
             stack.log('notices'), timeout=60,
             what='the clean-up look at the superevent')
    assert len(stack.received(sid)) == 1


def test_echo_mismatch_is_reported(alert_stack, scenario, tmp_path):
    stack, sid = alert_stack, scenario.race
    original = _only_notice(stack, sid)['payload']
    changed = original.replace(b'Report of a candidate', b'Report of some')
    assert changed != original
    path = tmp_path / 'changed.xml'
    path.write_bytes(changed)
    assert replay(path).returncode == 0
    wait_for(lambda: 'GCN_MISMATCH' in stack.labels(sid), timeout=30,
             what='the mismatch label')
    name = f'{sid}-1-Preliminary.gcn.diff'
    diff = stack.client.files(sid, name).read().decode()
    assert '-  <Description>Report of a candidate' in diff
    assert '+  <Description>Report of some' in diff
    assert f'GCN sent back ivo://gwnet/LVC#{sid}-1-Preliminary with ' \
        'differences' in stack.log('general')
    # The unchanged echo had been tagged before.
    voevent_file = stack.voevents(sid)[0]['filename']
    assert any('gcn_received' in e['tag_names'] for e in stack.logs(sid)
               if e['filename'] == voevent_file)
