"""GCN notices to External events, and RAVEN coincidences, on a running
system.

Real processes throughout: the local GCN feed serves the notices over the
VOEvent Transport Protocol to the real GCN listener in a general worker;
the exttrig worker records them in the session's local GraceDb (real HTTP
through the real ligo-gracedb client), whose LVAlerts reach the LVAlert
listener and the RAVEN handler. Every test uses trigger ids and GPS times
of its own.
"""
import re

import pytest
import redis

from gwcelery.locks import KEY_PREFIX
from gwcelery.tasks import raven
from gwcelery.util.waiting import wait_for

from .fixtures.exttrig import edit_notice, new_trigger_id
from .fixtures.gcn import replay
from .fixtures.superevents import fresh_time

pytestmark = pytest.mark.slow

SAMPLES = {
    # file: (pipeline, search, group)
    'fermi_grb_gcn.xml': ('Fermi', 'GRB', 'External'),
    'fermi_subthresh_grb_gcn.xml': ('Fermi', 'SubGRB', 'External'),
    'swift_grb_gcn.xml': ('Swift', 'GRB', 'External'),
    'snews_gcn.xml': ('SNEWS', 'Supernova', 'External'),
}


def file_content(stack, graceid, name='initial.data'):
    return stack.client.files(graceid, name).read()


# -- notices to events ---------------------------------------------------------

def test_samples_become_external_events(exttrig_stack, tmp_path):
    stack = exttrig_stack
    sent = {}
    for name in SAMPLES:
        trigger_id = new_trigger_id()
        path = tmp_path / name
        path.write_bytes(edit_notice(name, trigger_id=trigger_id))
        sent[name] = trigger_id, path
    # Through the command that the local deployment offers.
    result = replay(*(path for _, path in sent.values()))
    assert result.returncode == 0, result.stderr
    for name, (pipeline, search, group) in SAMPLES.items():
        trigger_id, path = sent[name]
        event = stack.wait_event(pipeline, trigger_id)
        assert event['graceid'].startswith('E')
        assert (event['group'], event['pipeline'], event['search']) == (
            group, pipeline, search)
        assert event['labels'] == []
        grb = event['extra_attributes']['GRB']
        assert grb['trigger_id'] == trigger_id
        assert grb['author_ivorn'] == 'ivo://nasa.gsfc.tan/gcn'
        assert file_content(stack, event['graceid']) == path.read_bytes()
    fermi = stack.events('Fermi', sent['fermi_grb_gcn.xml'][0])[0]
    assert fermi['gpstime'] == pytest.approx(1211191124.31)
    assert (fermi['extra_attributes']['GRB']['ra'],
            fermi['extra_attributes']['GRB']['dec']) == (140.05, -39.0499)


def test_a_later_notice_replaces_the_event(exttrig_stack):
    stack = exttrig_stack
    trigger_id, t = new_trigger_id(), fresh_time()
    first = edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                        gpstime=t, position=(10.0, 20.0, 8.0),
                        params={'Packet_Type': 112})
    stack.send(first)
    event = stack.wait_event('Fermi', trigger_id)
    second = edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                         gpstime=t, position=(11.0, 21.0, 3.0))
    stack.send(second)
    replaced = stack.wait_event(
        'Fermi', trigger_id,
        lambda e: e['extra_attributes']['GRB']['ra'] == 11.0)
    assert replaced['graceid'] == event['graceid']
    assert file_content(stack, event['graceid']) == second
    assert file_content(stack, event['graceid'], 'initial.data,0') == first
    # The same notice once more (a redelivery, or GCN's other server)
    # changes nothing.
    stack.send(second)
    stack.wait_log(rf'event {event["graceid"]} unchanged')
    assert 'initial.data,2' not in stack.files(event['graceid'])


def test_two_notices_of_one_trigger_at_once(exttrig_stack):
    """Both notices wait for the trigger's lock, then race for it: one
    creates the event, the other replaces its file."""
    stack = exttrig_stack
    trigger_id, t = new_trigger_id(), fresh_time()
    notices = [edit_notice('swift_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t) for _ in range(2)]
    client = redis.Redis.from_url(stack.redis_url)
    lock = client.lock(f'{KEY_PREFIX}exttrig:Swift:{trigger_id}',
                       timeout=60)
    assert lock.acquire(blocking=False)
    try:
        stack.send(*notices)
        # Both are running at once (the exttrig worker has two processes).
        stack.wait_log(f'Waiting for lock exttrig:Swift:{trigger_id}',
                       count=2)
        assert stack.events('Swift', trigger_id) == []
    finally:
        lock.release()
        client.close()
    event = stack.wait_event(
        'Swift', trigger_id,
        lambda e: 'initial.data,1' in stack.files(e['graceid']))
    stack.wait_log(rf'event {event["graceid"]} replaced')
    assert len(stack.events('Swift', trigger_id)) == 1
    assert 'initial.data,2' not in stack.files(event['graceid'])


def test_not_grb_label_follows_the_latest_notice(exttrig_stack):
    stack = exttrig_stack
    trigger_id, t = new_trigger_id(), fresh_time()
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t, params={'Most_Likely_Index': 3,
                                              'Most_Likely_Prob': 95}))
    event = stack.wait_event('Fermi', trigger_id,
                             lambda e: e['labels'] == ['NOT_GRB'])
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t, params={'Most_Likely_Index': 4,
                                              'Most_Likely_Prob': 95}))
    stack.wait_event('Fermi', trigger_id, lambda e: e['labels'] == [])
    stack.send(edit_notice('swift_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t,
                           params={'StarTrack_Lost_Lock': 'true'}))
    swift = stack.wait_event('Swift', trigger_id,
                             lambda e: e['labels'] == ['NOT_GRB'])
    assert swift['graceid'] != event['graceid']


def test_snews_test_notice_goes_to_the_test_group(exttrig_stack):
    stack = exttrig_stack
    trigger_id = new_trigger_id()
    stack.send(edit_notice('snews_gcn.xml', trigger_id=trigger_id,
                           role='test'))
    event = stack.wait_event('SNEWS', trigger_id, group='Test')
    assert event['graceid'].startswith('T')
    assert event['search'] == 'Supernova'
    assert stack.events('SNEWS', trigger_id) == []


def test_dropped_notices_and_the_worker_keeps_serving(exttrig_stack):
    stack = exttrig_stack
    t = fresh_time()
    ids = {name: new_trigger_id() for name in (
        'unreliable', 'fermi_test', 'no_trigger', 'bad_time', 'unknown',
        'bad_position', 'good')}
    unreliable = edit_notice('fermi_subthresh_grb_gcn.xml',
                             trigger_id=ids['unreliable'], gpstime=t,
                             params={'Reliability': 3})
    fermi_test = edit_notice('fermi_grb_gcn.xml', trigger_id=ids['fermi_test'],
                             role='test')
    no_trigger = edit_notice('fermi_grb_gcn.xml', params={'TrigID': None},
                             ivorn='ivo://nasa.gsfc.gcn/Fermi#no_trigger')
    bad_time = edit_notice('fermi_grb_gcn.xml', trigger_id=ids['bad_time'],
                           isotime='2018-13-45T99:00:00',
                           ivorn='ivo://nasa.gsfc.gcn/Fermi#bad_time')
    unknown = edit_notice('fermi_grb_gcn.xml', trigger_id=ids['unknown'],
                          ivorn='ivo://nasa.gsfc.gcn/Nowhere#unknown')
    bad_position = edit_notice('swift_grb_gcn.xml',
                               trigger_id=ids['bad_position'],
                               position=('nan', 0, 1),
                               ivorn='ivo://nasa.gsfc.gcn/SWIFT#bad_position')
    unknown_type = edit_notice('fermi_grb_gcn.xml',
                               params={'Packet_Type': 9999},
                               ivorn='ivo://nasa.gsfc.gcn/Fermi#type_9999')
    good = edit_notice('fermi_grb_gcn.xml', trigger_id=ids['good'])
    stack.send(unreliable, fermi_test, no_trigger, bad_time, unknown,
               bad_position, unknown_type, good)
    stack.wait_event('Fermi', ids['good'])
    stack.wait_log('Dropping GCN notice ivo://nasa.gsfc.gcn/SWIFT#bad_position')
    log = stack.log()
    assert re.search(r'Ignoring GCN notice \S+: reliability 3 is at most 4',
                     log)
    assert re.search(r"Ignoring GCN notice \S+: Fermi notice with role "
                     r"'test'", log)
    assert ('Dropping GCN notice ivo://nasa.gsfc.gcn/Fermi#no_trigger: no '
            'TrigID or Trans_Num parameter') in log
    assert ("Dropping GCN notice ivo://nasa.gsfc.gcn/Fermi#bad_time: "
            "ISOTime is not a time: '2018-13-45T99:00:00'") in log
    assert ('Dropping GCN notice ivo://nasa.gsfc.gcn/Nowhere#unknown: the '
            "IVORN names no known mission ('Nowhere')") in log
    assert 'C1 is not finite' in log
    for name, trigger_id in ids.items():
        if name != 'good':
            assert not stack.events('Fermi', trigger_id)
            assert not stack.events('Swift', trigger_id)
    # The type nobody handles stops at the listener.
    general = next(s for s in stack.services if s.hostname
                   and s.hostname.startswith('ext-general'))
    assert ('ivo://nasa.gsfc.gcn/Fermi#type_9999 has type 9999, which is '
            'not a known GCN notice type') in general.log()


# -- coincidences --------------------------------------------------------------

def coincidence_entries(stack, object_id, superevent_id, graceid,
                        kind='coincidence'):
    """The log entries of object_id that record a coincidence."""
    marker = f'RAVEN: {kind} of {superevent_id} with {graceid}:'
    return [entry for entry in stack.logs(object_id)
            if entry['comment'].startswith(marker)]


def assert_recorded_once(stack, superevent_id, graceid):
    superevent = stack.get_superevent(superevent_id)
    event = stack.event(graceid)
    assert graceid in superevent['em_events']
    assert 'EM_COINC' in superevent['labels']
    assert 'EM_COINC' in event['labels']
    for object_id in (superevent_id, graceid):
        (entry,) = coincidence_entries(stack, object_id, superevent_id,
                                       graceid)
        assert entry['tag_names'] == ['ext_coinc']
    return superevent, event


def wait_coincidence(stack, superevent_id, graceid, timeout=60):
    def done():
        event = stack.event(graceid)
        superevent = stack.get_superevent(superevent_id)
        return ('EM_COINC' in event['labels']
                and 'EM_COINC' in superevent['labels'])
    wait_for(done, timeout=timeout, interval=0.1,
             what=f'the coincidence of {superevent_id} and {graceid}')
    return assert_recorded_once(stack, superevent_id, graceid)


def far_file(stack, object_id):
    import json
    return json.loads(stack.client.files(
        object_id, raven.COINCIDENCE_FILE).read())


def test_coincidence_superevent_first(exttrig_stack):
    stack = exttrig_stack
    t = fresh_time()
    sid = stack.superevent(t)
    stack.wait_log(rf'Coincidence search of {sid} \(new alert\): no match')
    trigger_id = new_trigger_id()
    # The GRB 2 s after the merger: GW − GRB = −2 s, within [−5, +1].
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t + 2))
    graceid = stack.wait_event('Fermi', trigger_id)['graceid']
    superevent, _ = wait_coincidence(stack, sid, graceid)
    far = far_file(stack, sid)
    assert far == far_file(stack, graceid)
    assert far['external_event'] == graceid
    assert far['superevent_id'] == sid
    assert far['window'] == [-5.0, 1.0]
    # 6 s window × 310 GRBs a year × the GW FAR (1e-10 Hz).
    assert far['temporal_coinc_far'] == pytest.approx(
        6 * 310 / (365 * 86400) * 1e-10)
    assert far['spatiotemporal_coinc_far'] is None  # no GW sky map
    assert superevent['em_type'] == graceid
    assert superevent['time_coinc_far'] == far['temporal_coinc_far']
    assert f'{raven.COINCIDENCE_FILE},1' not in stack.files(sid)

    # The same alerts once more (found from both sides, or redelivered):
    # nothing is recorded twice.
    stack.wait_log(rf'Coincidence search of {graceid} \(new alert\): {sid}')
    done = len(re.findall(rf'Recorded the coincidence of {sid} with '
                          rf'{graceid}', stack.log()))
    for uid, obj in ((sid, superevent),
                     (graceid, stack.event(graceid))):
        raven.handle.delay({'uid': uid, 'alert_type': 'new', 'data': obj,
                            'object': obj})
    stack.wait_log(rf'Recorded the coincidence of {sid} with {graceid}',
                   count=done + 2)
    assert_recorded_once(stack, sid, graceid)
    for object_id in (sid, graceid):
        assert f'{raven.COINCIDENCE_FILE},1' not in stack.files(object_id)
    assert stack.get_superevent(sid)['em_events'] == [graceid]


def test_coincidence_external_event_first(exttrig_stack):
    stack = exttrig_stack
    t = fresh_time()
    trigger_id = new_trigger_id()
    stack.send(edit_notice('fermi_subthresh_grb_gcn.xml',
                           trigger_id=trigger_id, gpstime=t + 0.5))
    graceid = stack.wait_event('Fermi', trigger_id)['graceid']
    stack.wait_log(rf'Coincidence search of {graceid} \(new alert\): '
                   'no match')
    sid = stack.superevent(t)
    wait_coincidence(stack, sid, graceid)
    far = far_file(stack, sid)
    # Sub-threshold GBM candidates add 65 a year to the rate.
    assert far['temporal_coinc_far'] == pytest.approx(
        6 * 375 / (365 * 86400) * 1e-10)


def test_space_time_far_with_sky_maps(exttrig_stack, gw_skymap):
    stack = exttrig_stack
    t = fresh_time()
    sid = stack.superevent(t)
    stack.client.write_log(sid, 'sky map', filename='bayestar.multiorder.fits',
                           filecontents=gw_skymap(140.0, -39.0, 10.0))
    fermi_id, swift_id = new_trigger_id(), new_trigger_id()
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=fermi_id,
                           gpstime=t + 1, position=(140.0, -39.0, 5.0)),
               # 35° from the GW localization's centre: a point (0.05°).
               edit_notice('swift_grb_gcn.xml', trigger_id=swift_id,
                           gpstime=t + 3, position=(140.0, -4.0, 0.05)))
    fermi = stack.wait_event('Fermi', fermi_id)['graceid']
    swift = stack.wait_event('Swift', swift_id)['graceid']
    wait_coincidence(stack, sid, fermi)
    wait_coincidence(stack, sid, swift)
    superevent = stack.get_superevent(sid)
    assert sorted(superevent['em_events']) == sorted([fermi, swift])
    # The Fermi position is the GW's: more significant than in time alone.
    near = far_file(stack, fermi)
    assert near['skymap_overlap'] > 1
    assert near['spatiotemporal_coinc_far'] < near['temporal_coinc_far']
    assert 'external_skymap.fits.gz' in stack.files(fermi)
    far = far_file(stack, swift)
    assert far['skymap_overlap'] < 1
    assert far['spatiotemporal_coinc_far'] > far['temporal_coinc_far']
    assert 'external_skymap.fits.gz' not in stack.files(swift)
    # The superevent keeps the most significant (lowest temporal FAR;
    # equal here, so the first recorded stays).
    assert superevent['em_type'] in (fermi, swift)


def test_space_time_far_when_the_sky_map_arrives(exttrig_stack, gw_skymap):
    stack = exttrig_stack
    t = fresh_time()
    sid = stack.superevent(t)
    trigger_id = new_trigger_id()
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t + 1, position=(200.0, 10.0, 4.0)))
    graceid = stack.wait_event('Fermi', trigger_id)['graceid']
    wait_coincidence(stack, sid, graceid)
    assert far_file(stack, sid)['spatiotemporal_coinc_far'] is None
    # BAYESTAR's map comes later, then the label.
    stack.client.write_log(sid, 'sky map', filename='bayestar.multiorder.fits',
                           filecontents=gw_skymap(200.0, 10.0, 15.0))
    stack.client.write_label(sid, 'SKYMAP_READY')
    stack.wait_log(rf'Coincidence search of {sid} \(label_added alert\): '
                   f'{graceid}')
    for object_id in (sid, graceid):
        (entry,) = coincidence_entries(stack, object_id, sid, graceid,
                                       'space-time coincidence')
        assert entry['file_version'] == 1
    far = far_file(stack, graceid)
    assert far == far_file(stack, sid)
    assert far['spatiotemporal_coinc_far'] < far['temporal_coinc_far']
    superevent = stack.get_superevent(sid)
    assert superevent['space_coinc_far'] == far['spatiotemporal_coinc_far']
    # Once: the label again (a redelivery) adds nothing.
    raven.handle.delay({'uid': sid, 'alert_type': 'label_added',
                        'data': {'name': 'SKYMAP_READY'},
                        'object': superevent})
    stack.wait_log(rf'Coincidence search of {sid} \(label_added alert\): '
                   'no match')
    assert f'{raven.COINCIDENCE_FILE},2' not in stack.files(sid)


def test_not_grb_is_kept_out_until_a_notice_says_grb(exttrig_stack):
    stack = exttrig_stack
    t = fresh_time()
    sid = stack.superevent(t)
    trigger_id = new_trigger_id()
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t + 1,
                           params={'Def_NOT_a_GRB': 'true'}))
    graceid = stack.wait_event('Fermi', trigger_id)['graceid']
    stack.wait_log(f'{graceid} is labelled NOT_GRB: kept out of '
                   'coincidences')
    # A new superevent near it does not find it either.
    other = stack.superevent(t + 0.5)
    stack.wait_log(rf'Coincidence search of {other} \(new alert\): no match')
    assert stack.get_superevent(sid)['em_events'] == []
    assert coincidence_entries(stack, graceid, sid, graceid) == []
    assert 'EM_COINC' not in stack.event(graceid)['labels']
    # A later notice says GRB: the label goes, and the search runs.
    stack.send(edit_notice('fermi_grb_gcn.xml', trigger_id=trigger_id,
                           gpstime=t + 1))
    stack.wait_log(rf'Coincidence search of {graceid} \(label_removed '
                   r'alert\)')
    event = stack.event(graceid)
    assert 'EM_COINC' in event['labels']
    # Both superevents match; the event joins one of them (GraceDb keeps an
    # event in one superevent at most), and both record the coincidence.
    members = [s for s in (sid, other)
               if graceid in stack.get_superevent(s)['em_events']]
    assert members == [event['superevent']]
    for s in (sid, other):
        assert 'EM_COINC' in stack.get_superevent(s)['labels']
        for object_id in (s, graceid):
            assert len(coincidence_entries(stack, object_id, s,
                                           graceid)) == 1


def test_snews_and_a_burst_superevent(exttrig_stack):
    stack = exttrig_stack
    t = fresh_time()
    sid = stack.superevent(t, pipeline='cwb')
    trigger_id = new_trigger_id()
    stack.send(edit_notice('snews_gcn.xml', trigger_id=trigger_id,
                           gpstime=t - 4))
    graceid = stack.wait_event('SNEWS', trigger_id)['graceid']
    wait_coincidence(stack, sid, graceid)
    (entry,) = coincidence_entries(stack, sid, sid, graceid)
    assert entry['filename'] == ''  # no rate of SNEWS alerts, no FAR
    assert 'GW − external = +4.000 s' in entry['comment']
