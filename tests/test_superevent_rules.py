"""Pure tests of the superevent rules (no broker, no GraceDb)."""
import itertools
import random

import pytest

from gwcelery import app
from gwcelery.superevent_rules import Create, Ignore, Join, Rules, Update

T = 1_300_000_000.0


def cbc(graceid, t=T, far=1e-10, snr=10.0, ifos='H1,L1', pipeline='gstlal',
        labels=(), group='CBC', search='AllSky'):
    return {'graceid': graceid, 'group': group, 'pipeline': pipeline,
            'search': search, 'gpstime': t, 'far': far, 'instruments': ifos,
            'offline': False, 'labels': list(labels),
            'extra_attributes': {'CoincInspiral': {'snr': snr, 'ifos': ifos}}}


def cwb(graceid, t=T, far=1e-10, duration=0.5, labels=(), group='Burst',
        search='AllSky'):
    return {'graceid': graceid, 'group': group, 'pipeline': 'CWB',
            'search': search, 'gpstime': t, 'far': far, 'instruments': 'H1,L1',
            'offline': False, 'labels': list(labels),
            'extra_attributes': {'MultiBurst': {'duration': duration}}}


def olib(graceid, t=T, far=1e-10, quality=20.0, frequency=100.0):
    return {'graceid': graceid, 'group': 'Burst', 'pipeline': 'oLIB',
            'search': 'AllSky', 'gpstime': t, 'far': far,
            'instruments': 'H1,L1', 'offline': False, 'labels': [],
            'extra_attributes': {'LalInferenceBurst': {
                'quality_mean': quality, 'frequency_mean': frequency}}}


def superevent(sid, t_start, t_0, t_end, events, category='production'):
    return {'superevent_id': sid, 'category': category, 't_start': t_start,
            't_0': t_0, 't_end': t_end, 'preferred_event': events[0],
            'gw_events': list(events)}


ALL_COMPLETE = ('PASTRO_READY', 'EMBRIGHT_READY', 'SKYMAP_READY')


@pytest.fixture
def rules():
    return Rules.from_conf(app.conf)


def test_from_conf_reads_every_setting():
    conf = dict(app.conf)
    conf.update(superevent_far_threshold=1e-3,
                superevent_query_d_t_start=7.0,
                superevent_cwb_duration_factor=2.0,
                preliminary_alert_trials_factor={'CBC': 9.0, 'burst': 1.0})
    rules = Rules.from_conf(conf)
    assert rules.far_threshold == 1e-3
    assert rules.query_window(cbc('G1'))[0] == T - 7.0
    assert rules.segment(cwb('G1', duration=1.5)) == (T - 3.0, T + 3.0)
    # Table keys are matched case-insensitively.
    assert rules.trials_factor['cbc'] == 9.0


def test_defaults_are_the_documented_values(rules):
    assert rules.far_threshold == pytest.approx(1 / 3600)
    assert rules.publish_far_threshold['cbc'] == pytest.approx(1 / 5184000)
    assert rules.publish_far_threshold['burst'] == pytest.approx(1 / 31536000)
    assert dict(rules.trials_factor) == {'cbc': 5.0, 'burst': 4.0}
    assert rules.query_window(cbc('G1')) == (T - 100, T + 100)


@pytest.mark.parametrize('event, category', [
    (cbc('G1'), 'production'),
    (cbc('T1', group='Test'), 'test'),
    (cbc('M1', search='MDC'), 'mdc'),
    (cwb('T2', group='Test', search='MDC'), 'test'),
])
def test_category(event, category):
    assert Rules.category(event) == category


@pytest.mark.parametrize('event, kind', [
    (cbc('G1', pipeline='pycbc'), 'cbc'),
    (cbc('G1', pipeline='MBTAOnline'), 'cbc'),
    (cbc('T1', group='Test', pipeline='spiir'), 'cbc'),
    (cwb('G2'), 'burst'),
    (olib('G3'), 'burst'),
    ({'group': 'Burst', 'pipeline': 'new'}, 'burst'),
    ({'group': 'External', 'pipeline': 'Fermi'}, 'other'),
])
def test_kind(event, kind):
    assert Rules.kind(event) == kind


def test_far_threshold_is_inclusive(rules):
    assert rules.ineligibility(cbc('G1', far=1 / 3600)) is None
    reason = rules.ineligibility(cbc('G1', far=1 / 3599))
    assert 'above threshold' in reason


@pytest.mark.parametrize('event, words', [
    ({**cbc('G1'), 'offline': True}, 'offline'),
    ({**cbc('G1'), 'far': None}, 'no FAR'),
    ({**cbc('G1'), 'far': 'nan'}, 'no FAR'),
    ({**cbc('G1'), 'gpstime': None}, 'no event time'),
    ({**cbc('E1'), 'group': 'External'}, 'external'),
])
def test_ineligible_events(rules, event, words):
    assert words in rules.ineligibility(event)
    assert isinstance(rules.plan(event, []), Ignore)


def test_segments(rules):
    assert rules.segment(cbc('G1', pipeline='gstlal')) == (T - 1, T + 1)
    assert rules.segment(cbc('G1', pipeline='MBTAOnline')) == (T - 1, T + 1)
    assert rules.segment(cwb('G2', duration=0.25)) == (T - 1.0, T + 1.0)
    assert rules.segment(olib('G3', quality=30, frequency=60)) == (
        T - 0.5, T + 0.5)
    # Missing or nonsensical burst attributes fall back on the default.
    broken = cwb('G4')
    broken['extra_attributes'] = {}
    assert rules.segment(broken) == (T - 1, T + 1)
    assert rules.segment(olib('G5', frequency=0)) == (T - 1, T + 1)
    assert rules.segment(cwb('G6', duration=-3)) == (T - 1, T + 1)


def test_plan_creates_when_nothing_is_near(rules):
    action = rules.plan(cbc('G1'), [])
    assert action == Create('production', T - 1, T, T + 1, 'G1')


def test_plan_joins_an_intersecting_superevent(rules):
    near = superevent('S1', T - 0.5, T + 0.5, T + 1.5, ['G0'])
    assert rules.plan(cbc('G1'), [near]) == Join('S1')


def test_segment_touching_counts_as_intersecting(rules):
    touching = superevent('S1', T + 1.0, T + 2.0, T + 3.0, ['G0'])
    assert rules.plan(cbc('G1'), [touching]) == Join('S1')


def test_plan_creates_when_neighbours_do_not_intersect(rules):
    # Two candidates 5 s apart (±1 s windows) stay apart.
    far_off = superevent('S1', T + 4, T + 5, T + 6, ['G0'])
    assert isinstance(rules.plan(cbc('G1'), [far_off]), Create)


def test_plan_never_mixes_categories(rules):
    production = superevent('S1', T - 1, T, T + 1, ['G0'])
    test = superevent('TS1', T - 1, T, T + 1, ['T0'], category='test')
    mdc = superevent('MS1', T - 1, T, T + 1, ['M0'], category='MDC')
    everything = [production, test, mdc]
    assert rules.plan(cbc('G1'), everything) == Join('S1')
    assert rules.plan(cbc('T1', group='Test'), everything) == Join('TS1')
    assert rules.plan(cbc('M1', search='MDC'), everything) == Join('MS1')
    assert isinstance(rules.plan(cbc('T2', group='Test'), [production]), Create)


def test_plan_accepts_one_letter_categories(rules):
    assert rules.plan(cbc('T1', group='Test'), [
        superevent('TS1', T - 1, T, T + 1, ['T0'], category='T')]) == Join('TS1')


def test_plan_picks_the_nearest_of_several(rules):
    before = superevent('S1', T - 3, T - 2, T - 0.5, ['G0'])
    after = superevent('S2', T + 0.5, T + 1.5, T + 2.5, ['G2'])
    assert rules.plan(cbc('G1', t=T + 0.4), [before, after]) == Join('S2')
    assert rules.plan(cbc('G1', t=T - 0.4), [before, after]) == Join('S1')


def test_plan_for_a_member_is_an_update_even_if_now_ineligible(rules):
    holder = superevent('S1', T - 1, T, T + 1, ['G0', 'G1'])
    assert rules.plan(cbc('G1', far=1.0), [holder]) == Update('S1')
    assert rules.plan({**cbc('G2'), 'superevent': 'S9'}, []) == Update('S9')


def test_preferred_cbc_beats_burst(rules):
    # Both publishable: the kind decides, whatever the FARs.
    assert rules.preferred([cwb('G1', far=1e-20), cbc('G2', far=1e-9)]
                           )['graceid'] == 'G2'
    # Neither publishable: likewise.
    assert rules.preferred([cwb('G1', far=1e-6), cbc('G2', far=1e-5)]
                           )['graceid'] == 'G2'


def test_preferred_cbc_more_instruments_then_snr(rules):
    hl = cbc('G1', snr=30, ifos='H1,L1')
    hlv = cbc('G2', snr=12, ifos='H1,L1,V1')
    hlv_loud = cbc('G3', snr=13, ifos='H1,L1,V1')
    assert rules.preferred([hl, hlv])['graceid'] == 'G2'
    assert rules.preferred([hl, hlv, hlv_loud])['graceid'] == 'G3'


def test_snr_from_single_detectors_when_no_coinc(rules):
    event = cbc('G1')
    event['extra_attributes'] = {'SingleInspiral': [{'snr': 3.0}, {'snr': 4.0}]}
    assert rules.snr(event) == pytest.approx(5.0)
    event['extra_attributes'] = {}
    assert rules.snr(event) == 0.0


def test_preferred_burst_lower_far(rules):
    assert rules.preferred([cwb('G1', far=1e-8), olib('G2', far=1e-9)]
                           )['graceid'] == 'G2'


def test_complete_beats_louder(rules):
    loud = cbc('G1', snr=40, ifos='H1,L1,V1')
    quiet_complete = cbc('G2', snr=8, labels=ALL_COMPLETE)
    assert rules.preferred([loud, quiet_complete])['graceid'] == 'G2'
    # Two of three labels is not complete.
    partial = cbc('G3', snr=9, labels=ALL_COMPLETE[:2])
    assert rules.preferred([loud, partial])['graceid'] == 'G1'
    # A burst needs only its sky map.
    burst = cwb('G4', labels=['SKYMAP_READY'])
    assert rules.is_complete(burst)
    assert rules.preferred([loud, burst])['graceid'] == 'G4'


def test_publishable_beats_unpublishable(rules):
    # 1/(60 d) / 5 is the largest publishable CBC FAR.
    limit = 1 / (60 * 86400) / 5
    assert rules.is_publishable(cbc('G1', far=limit * 0.99))
    assert not rules.is_publishable(cbc('G1', far=limit * 1.01))
    burst_limit = 1 / (365 * 86400) / 4
    assert rules.is_publishable(cwb('G1', far=burst_limit * 0.99))
    assert not rules.is_publishable(cwb('G1', far=burst_limit * 1.01))
    quiet_cbc = cbc('G1', far=limit * 10, snr=50)
    loud_burst = cwb('G2', far=burst_limit * 0.5)
    assert rules.preferred([quiet_cbc, loud_burst])['graceid'] == 'G2'
    # Completeness comes before publishability.
    complete = cbc('G3', far=limit * 10, labels=ALL_COMPLETE)
    assert rules.preferred([complete, loud_burst])['graceid'] == 'G3'


def test_ties_go_to_the_earlier_upload(rules):
    a, b = cbc('G10', snr=10), cbc('G9', snr=10)
    assert rules.preferred([a, b])['graceid'] == 'G9'
    assert rules.preferred([b, a])['graceid'] == 'G9'


def test_target_widens_and_t0_follows_preferred(rules):
    current = superevent('S1', T - 1, T, T + 1, ['G1'])
    events = [cbc('G1', snr=8), cbc('G2', t=T + 1.5, snr=20)]
    assert rules.target(current, events) == {
        't_start': T - 1, 't_0': T + 1.5, 't_end': T + 2.5,
        'preferred_event': 'G2'}
    assert rules.changes(current, events) == {
        't_0': T + 1.5, 't_end': T + 2.5, 'preferred_event': 'G2'}


def test_target_never_shrinks(rules):
    wide = superevent('S1', T - 10, T, T + 10, ['G1'])
    assert rules.changes(wide, [cbc('G1')]) == {}


def test_changes_ignore_rounding(rules):
    stored = superevent('S1', T - 1 + 1e-7, T - 1e-7, T + 1, ['G1'])
    assert rules.changes(stored, [cbc('G1')]) == {}


def test_cwb_widens_by_duration(rules):
    current = superevent('S1', T - 1, T, T + 1, ['G1'])
    events = [cbc('G1'), cwb('G2', t=T + 0.5, duration=2.0)]
    target = rules.target(current, events)
    assert (target['t_start'], target['t_end']) == (T - 7.5, T + 8.5)
    assert target['preferred_event'] == 'G1'


def _simulate(rules, events):
    """Apply plan/changes to an in-memory 'GraceDb'; return superevents."""
    superevents = {}
    for n, event in enumerate(events):
        start, end = rules.query_window(event)
        near = [s for s in superevents.values()
                if start <= s['t_0'] <= end]
        action = rules.plan(event, near)
        if isinstance(action, Create):
            sid = f'S{n}'
            superevents[sid] = {
                'superevent_id': sid, 'category': action.category,
                't_start': action.t_start, 't_0': action.t_0,
                't_end': action.t_end,
                'preferred_event': action.preferred_event,
                'gw_events': [event['graceid']]}
        elif isinstance(action, (Join, Update)):
            s = superevents[action.superevent_id]
            if event['graceid'] not in s['gw_events']:
                s['gw_events'].append(event['graceid'])
            by_id = {e['graceid']: e for e in events}
            members = [by_id[g] for g in s['gw_events']]
            s.update(rules.changes(s, members))
    return superevents


def test_repeated_alerts_change_nothing(rules):
    events = [cbc('G1', snr=8), cbc('G2', t=T + 0.3, snr=12),
              cwb('G3', t=T + 0.1)]
    once = _simulate(rules, events)
    twice = _simulate(rules, events + events)
    assert once == twice
    (only,) = once.values()
    assert only['preferred_event'] == 'G2'
    assert sorted(only['gw_events']) == ['G1', 'G2', 'G3']


def test_arrival_order_does_not_change_the_outcome(rules):
    rng = random.Random(4)
    events = [cbc(f'G{i}', t=T + rng.uniform(-0.5, 0.5),
                  snr=rng.uniform(8, 20), ifos=rng.choice(['H1,L1',
                                                           'H1,L1,V1']))
              for i in range(6)] + [cwb('G9', t=T + 0.2)]
    outcomes = set()
    for order in itertools.islice(itertools.permutations(events), 0, 720, 37):
        (only,) = _simulate(rules, list(order)).values()
        outcomes.add((only['preferred_event'], only['t_0'],
                      only['t_start'], only['t_end']))
    assert len(outcomes) == 1


def test_preferred_order_is_a_setting():
    conf = dict(app.conf)
    # Kind first: an incomplete CBC event beats a complete burst.
    conf['superevent_preferred_event_order'] = ('group', 'complete')
    rules = Rules.from_conf(conf)
    burst = cwb('G1', labels=['SKYMAP_READY'])
    event = cbc('G2')
    assert rules.preferred([burst, event])['graceid'] == 'G2'
    assert Rules.from_conf(app.conf).preferred([burst, event])['graceid'] == 'G1'
    # Without 'instruments', SNR alone decides between CBC events.
    conf['superevent_preferred_event_order'] = ('group', 'significance')
    rules = Rules.from_conf(conf)
    hl = cbc('G3', snr=30, ifos='H1,L1')
    hlv = cbc('G4', snr=12, ifos='H1,L1,V1')
    assert rules.preferred([hl, hlv])['graceid'] == 'G3'


@pytest.mark.parametrize('order', [('loudest',), ('group', 'group')])
def test_bad_preferred_order_is_refused(order):
    with pytest.raises(ValueError, match='must be distinct names'):
        Rules(preferred_order=order)
