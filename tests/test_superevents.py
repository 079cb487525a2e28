"""Scenarios of the superevent manager on a running system.

Real processes throughout: the session's local GraceDb (real HTTP through
the real ligo-gracedb client) publishing LVAlerts on the embedded Redis
transport, the LVAlert listener in a general worker kept alive by beat, and
the serial superevent worker. Each test uploads events the way pipelines
do, at GPS times of its own, and waits for GraceDb to show the outcome.
"""
import random
import re
import subprocess
import sys

import pytest

from gwcelery import app
from gwcelery.lvalert import transport
from gwcelery.util.waiting import wait_for

from .fixtures.superevents import fresh_time

pytestmark = pytest.mark.slow

ALL_COMPLETE = ('PASTRO_READY', 'EMBRIGHT_READY', 'SKYMAP_READY')


def members(superevents):
    return sorted(g for s in superevents for g in s['gw_events'])


def one_with(*graceids):
    """Condition: exactly one superevent, holding exactly graceids."""
    return lambda found: len(found) == 1 and sorted(
        found[0]['gw_events']) == sorted(graceids)


def test_single_cbc_event(superevent_stack):
    t = fresh_time() + 0.25
    g = superevent_stack.upload('gstlal', t, snr=11.0)
    (s,) = superevent_stack.wait_superevents(t, one_with(g))
    assert s['preferred_event'] == g
    assert s['category'].lower() == 'production'
    assert s['superevent_id'].startswith('S')
    assert s['t_0'] == pytest.approx(t, abs=1e-6)
    assert s['t_start'] == pytest.approx(t - 1, abs=1e-6)
    assert s['t_end'] == pytest.approx(t + 1, abs=1e-6)
    assert superevent_stack.event(g)['superevent'] == s['superevent_id']


def test_cbc_and_burst_overlap(superevent_stack):
    t = fresh_time()
    # The burst arrives first and is preferred until the CBC event comes.
    burst = superevent_stack.upload('cwb', t + 0.3, duration=0.5)
    superevent_stack.wait_superevents(t, one_with(burst))
    cbc = superevent_stack.upload('pycbc', t, snr=9.0)
    (s,) = superevent_stack.wait_superevents(
        t, lambda f: one_with(burst, cbc)(f)
        and f[0]['preferred_event'] == cbc)
    assert s['t_0'] == pytest.approx(t, abs=1e-6)
    # The union of cWB's ±4 × 0.5 s and pycbc's ±1 s.
    assert s['t_start'] == pytest.approx(t + 0.3 - 2.0, abs=1e-6)
    assert s['t_end'] == pytest.approx(t + 0.3 + 2.0, abs=1e-6)


def test_two_candidates_five_seconds_apart(superevent_stack):
    t = fresh_time()
    first = superevent_stack.upload('gstlal', t)
    second = superevent_stack.upload('gstlal', t + 5)
    found = superevent_stack.wait_superevents(
        t, lambda f: members(f) == sorted([first, second]))
    assert len(found) == 2
    by_event = {s['gw_events'][0]: s for s in found}
    assert by_event[first]['t_0'] == pytest.approx(t, abs=1e-6)
    assert by_event[second]['t_0'] == pytest.approx(t + 5, abs=1e-6)


def test_chain_of_overlapping_events_widens_one_superevent(superevent_stack):
    t = fresh_time()
    chain = [superevent_stack.upload('spiir', t + 1.5 * i, snr=10.0)
             for i in range(4)]
    superevent_stack.wait_superevents(t, one_with(*chain))
    superevent_stack.wait_idle()
    (s,) = superevent_stack.superevents(t)
    assert s['t_start'] == pytest.approx(t - 1, abs=1e-6)
    assert s['t_end'] == pytest.approx(t + 4.5 + 1, abs=1e-6)
    # Equal SNR and instruments: the earliest upload stays preferred.
    assert s['preferred_event'] == chain[0]
    assert s['t_0'] == pytest.approx(t, abs=1e-6)


def test_events_above_the_far_threshold_are_ignored(superevent_stack):
    t = fresh_time()
    noisy = superevent_stack.upload('gstlal', t, far=1e-3)
    wait_for(lambda: superevent_stack.handled(noisy), timeout=60,
             what='the noisy event to be handled')
    assert f'Not grouping {noisy}: FAR' in superevent_stack.worker_log()
    assert superevent_stack.superevents(t) == []
    good = superevent_stack.upload('gstlal', t + 0.2)
    superevent_stack.wait_superevents(t, one_with(good))
    assert superevent_stack.event(noisy)['superevent'] is None


def test_categories_are_kept_apart(superevent_stack):
    t = fresh_time()
    production = superevent_stack.upload('gstlal', t)
    test = superevent_stack.upload('gstlal', t, group='Test')
    mdc = superevent_stack.upload('gstlal', t, search='MDC')
    found = superevent_stack.wait_superevents(
        t, lambda f: members(f) == sorted([production, test, mdc]))
    assert len(found) == 3
    by_event = {s['gw_events'][0]: s for s in found}
    assert by_event[production]['superevent_id'].startswith('S')
    assert by_event[test]['superevent_id'].startswith('TS')
    assert by_event[mdc]['superevent_id'].startswith('MS')
    assert {s['category'].lower() for s in found} == {
        'production', 'test', 'mdc'}


def test_preferred_event_switches_on_higher_snr(superevent_stack):
    t = fresh_time()
    quiet = superevent_stack.upload('gstlal', t, snr=10.0)
    superevent_stack.wait_superevents(t, one_with(quiet))
    loud = superevent_stack.upload('pycbc', t + 0.1, snr=20.0)
    (s,) = superevent_stack.wait_superevents(
        t, lambda f: one_with(quiet, loud)(f)
        and f[0]['preferred_event'] == loud)
    assert s['t_0'] == pytest.approx(t + 0.1, abs=1e-6)
    # Quieter than the preferred one, or with fewer detectors: no switch.
    middling = superevent_stack.upload('spiir', t + 0.2, snr=15.0)
    two_ifo = superevent_stack.upload('mbtaonline', t, snr=18.0)
    hlv = superevent_stack.upload('gstlal', t + 0.05, snr=12.0,
                                  ifos=('H1', 'L1', 'V1'))
    (s,) = superevent_stack.wait_superevents(
        t, one_with(quiet, loud, middling, two_ifo, hlv))
    superevent_stack.wait_idle()
    (s,) = superevent_stack.superevents(t)
    # More detectors beat a higher SNR.
    assert s['preferred_event'] == hlv
    assert s['t_0'] == pytest.approx(t + 0.05, abs=1e-6)


def test_preferred_event_switches_on_completeness(superevent_stack):
    t = fresh_time()
    loud = superevent_stack.upload('gstlal', t, snr=25.0)
    quiet = superevent_stack.upload('pycbc', t + 0.2, snr=9.0)
    superevent_stack.wait_superevents(
        t, lambda f: one_with(loud, quiet)(f)
        and f[0]['preferred_event'] == loud)
    client = superevent_stack.client
    for label in ALL_COMPLETE[:2]:
        client.write_label(quiet, label)
    wait_for(lambda: superevent_stack.handled(quiet, 'label_added') == 2,
             timeout=60, what='both label alerts to be handled')
    (s,) = superevent_stack.superevents(t)
    assert s['preferred_event'] == loud  # two of three labels: incomplete
    client.write_label(quiet, ALL_COMPLETE[2])
    (s,) = superevent_stack.wait_superevents(
        t, lambda f: f[0]['preferred_event'] == quiet)
    assert s['t_0'] == pytest.approx(t + 0.2, abs=1e-6)
    # Other labels do not make the handler look.
    client.write_label(quiet, 'INJ')
    wait_for(lambda: f'Ignoring label INJ on {quiet}: not a completeness'
             in superevent_stack.worker_log(), timeout=60,
             what='the INJ label alert to reach the handler')
    assert superevent_stack.handled(quiet, 'label_added') == 3


def test_update_alerts_re_evaluate(superevent_stack):
    from .fixtures.superevents import coinc_xml
    t = fresh_time()
    client = superevent_stack.client
    # A FAR revised below the threshold brings the event in.
    late = superevent_stack.upload('gstlal', t, far=1e-2, snr=9.0)
    wait_for(lambda: superevent_stack.handled(late), timeout=60,
             what='the first alert to be handled')
    assert superevent_stack.superevents(t) == []
    client.replace_event(late, 'coinc.xml',
                         filecontents=coinc_xml(t, far=1e-9, snr=9.0))
    superevent_stack.wait_superevents(t, one_with(late))
    # A member revised to a higher SNR takes over as preferred event.
    other = superevent_stack.upload('pycbc', t + 0.2, snr=12.0)
    superevent_stack.wait_superevents(
        t, lambda f: one_with(late, other)(f)
        and f[0]['preferred_event'] == other)
    client.replace_event(late, 'coinc.xml',
                         filecontents=coinc_xml(t, far=1e-9, snr=20.0))
    (s,) = superevent_stack.wait_superevents(
        t, lambda f: f[0]['preferred_event'] == late)
    assert s['t_0'] == pytest.approx(t, abs=1e-6)


def _scenario(stack, t, order):
    """Upload four events of one candidate in the given order."""
    specs = {
        'gstlal': dict(gpstime=t + 0.02, snr=12.0),
        'pycbc': dict(gpstime=t - 0.4, snr=14.0),
        'cwb': dict(gpstime=t + 0.9, duration=0.4),
        'olib': dict(gpstime=t + 0.1, quality=40.0, frequency=20.0),
    }
    ids = {}
    for pipeline in order:
        spec = dict(specs[pipeline])
        ids[pipeline] = stack.upload(pipeline, spec.pop('gpstime'), **spec)
    return ids


def test_events_arriving_out_of_order(superevent_stack):
    forward, backward = fresh_time(), fresh_time()
    order = ['pycbc', 'gstlal', 'olib', 'cwb']
    a = _scenario(superevent_stack, forward, order)
    b = _scenario(superevent_stack, backward, order[::-1])
    (sa,) = superevent_stack.wait_superevents(forward, one_with(*a.values()))
    (sb,) = superevent_stack.wait_superevents(backward, one_with(*b.values()))
    superevent_stack.wait_idle()
    (sa,) = superevent_stack.superevents(forward)
    (sb,) = superevent_stack.superevents(backward)
    # Same candidate, same outcome, whatever the order of arrival.
    assert sa['preferred_event'] == a['pycbc']
    assert sb['preferred_event'] == b['pycbc']
    for key in ('t_start', 't_0', 't_end'):
        assert sa[key] - forward == pytest.approx(sb[key] - backward,
                                                  abs=1e-6)
    # oLIB: ±40/20 s; cWB: ±4 × 0.4 s.
    assert sa['t_start'] == pytest.approx(forward + 0.1 - 2.0, abs=1e-6)
    assert sa['t_end'] == pytest.approx(forward + 0.9 + 1.6, abs=1e-6)


def _manager_log(stack, superevent_id):
    """The superevent's log but the orchestrator's latency timeline, which
    it rewrites as the superevent's stages happen
    (:mod:`gwcelery.tasks.timeline`)."""
    from gwcelery import timeline
    return [e for e in stack.client.logs(superevent_id).json()['log']
            if e['filename'] != timeline.FILENAME]


def test_the_same_alert_twice_changes_nothing(superevent_stack):
    t = fresh_time()
    first = superevent_stack.upload('gstlal', t, snr=10.0)
    second = superevent_stack.upload('pycbc', t + 0.3, snr=13.0)
    superevent_stack.wait_superevents(
        t, lambda f: one_with(first, second)(f)
        and f[0]['preferred_event'] == second)
    superevent_stack.wait_idle()
    (before,) = superevent_stack.superevents(t)
    log_before = _manager_log(superevent_stack, before['superevent_id'])
    with transport.from_url(superevent_stack.redis_url) as publisher:
        for graceid, node in ((first, 'cbc_gstlal'), (second, 'cbc_pycbc')):
            event = superevent_stack.event(graceid)
            publisher.publish(node, {'uid': graceid, 'alert_type': 'new',
                                     'data': event, 'object': event})
    wait_for(lambda: superevent_stack.handled(first) == 2
             and superevent_stack.handled(second) == 2, timeout=60,
             what='the repeated alerts to be handled')
    superevent_stack.wait_idle()
    (after,) = superevent_stack.superevents(t)
    # What the manager owns; the embedded preferred event's labels may
    # change meanwhile (its classification runs beside the manager).
    managed = ('superevent_id', 'category', 't_start', 't_0', 't_end',
               'preferred_event', 'gw_events', 'labels')
    assert {k: after[k] for k in managed} == {k: before[k] for k in managed}
    assert _manager_log(superevent_stack, after['superevent_id']) == \
        log_before
    assert [e['superevent_id'] for e in superevent_stack.superevents(
        t, window=500)] == [after['superevent_id']]


def test_bad_alerts_are_logged_and_survived(superevent_stack):
    t = fresh_time()
    with transport.from_url(superevent_stack.redis_url) as publisher:
        publisher.publish('cbc_gstlal', {'alert_type': 'new'})
        publisher.publish('cbc_gstlal', {'uid': ['G1'], 'alert_type': 'new'})
        publisher.publish('cbc_gstlal', {'uid': 'G1', 'alert_type': 'log'})
        publisher.publish('cbc_gstlal', {'uid': 'G999999999',
                                         'alert_type': 'new'})
        publisher.publish('cbc_gstlal', {'uid': 'no such id!',
                                         'alert_type': 'update'})
        publisher.publish_raw('cbc_gstlal', '{"uid": "G1", "alert_')
    good = superevent_stack.upload('gstlal', t)
    superevent_stack.wait_superevents(t, one_with(good))
    log = superevent_stack.worker_log()
    assert log.count('Ignoring a malformed alert without uid/alert_type') == 2
    assert 'Dropping new alert for G999999999: GraceDb refused a request ' \
           'for good (HTTP 404' in log
    assert 'Dropping update alert for no such id!: GraceDb refused' in log


def test_gracedb_failures_are_retried(superevent_stack, faulty_proxy):
    proxy = faulty_proxy(superevent_stack.gracedb_url)
    superevent_stack.replace_superevent_worker(
        env={'GWCELERY_TEST_GRACEDB_URL': proxy.url})
    try:
        for mode in (503, 'drop'):
            t = fresh_time()
            proxy.fail(2, mode)
            g = superevent_stack.upload('pycbc', t)
            (s,) = superevent_stack.wait_superevents(t, one_with(g))
            assert s['preferred_event'] == g
            assert proxy.failed == 2
            wait_for(lambda: superevent_stack.handled(g) == 1, timeout=30,
                     what='the handler to finish')
        log = superevent_stack.worker_log()
        # The failures may fall on the new alert or on the label_added
        # alerts of the classification that runs beside it.
        assert log.count('GraceDb failed while handling ') >= 4
        # The back-off of the gracedb_retry_* settings (0.2 s doubling, in
        # the test configuration), not one of its own: two failures in a
        # row wait at most 0.2 and 0.4 s.
        delays = [float(d) for d in re.findall(
            r'GraceDb failed while handling \S+ alert .*; trying again in '
            r'([\d.]+) s', log)]
        assert len(delays) >= 4 and max(delays) <= 2 * app.conf.gracedb_retry_backoff
    finally:
        superevent_stack.replace_superevent_worker()


def test_sigkill_mid_burst_then_restart(superevent_stack):
    """Every eligible event ends in exactly one superevent; none is made
    twice; each candidate's loudest HLV event is preferred."""
    rng = random.Random(6)
    stack = superevent_stack
    pipelines = ['gstlal', 'pycbc', 'spiir', 'mbtaonline']
    base = fresh_time()
    candidates = [base + 20 * i for i in range(4)]
    handled_before = stack.worker_log().count('Handled new alert')
    expected = {}
    eligible, noisy = [], []
    for n in range(12):
        for c, t in enumerate(candidates):
            pipeline = pipelines[n % 4]
            if n == 7:  # the one loudest three-detector event per candidate
                g = stack.upload(pipeline, t + 0.05 * c, snr=30.0,
                                 ifos=('H1', 'L1', 'V1'))
                expected[t] = g
            elif n == 9:
                noisy.append(stack.upload(pipeline, t, far=1e-2))
                continue
            else:
                g = stack.upload(pipeline, t + rng.uniform(-0.5, 0.5),
                                 snr=rng.uniform(8, 25))
            eligible.append(g)
        if n == 5:
            # Kill once the worker is well into the burst.
            wait_for(lambda: stack.worker_log().count('Handled new alert')
                     >= handled_before + 5, timeout=60,
                     what='the worker to get going')
            stack.kill_superevent_worker()
    total = len(eligible) + len(noisy)
    done = stack.worker_log().count('Handled new alert') - handled_before
    assert done < total, 'the kill came too late to test anything'
    stack.start_superevent_worker()

    def all_grouped(found):
        return sorted(members(found)) == sorted(eligible)

    window = 80
    try:
        stack.wait_superevents(candidates[0] + 30, all_grouped, timeout=60,
                               window=window)
    except TimeoutError:
        found = stack.superevents(candidates[0] + 30, window=window)
        missing = sorted(set(eligible) - set(members(found)))
        raise AssertionError(
            f'not grouped: {missing}; superevents: {found}\n'
            + stack.worker_log()[-6000:]) from None
    stack.wait_idle()
    found = stack.superevents(candidates[0] + 30, window=window)
    grouped = members(found)
    assert len(grouped) == len(set(grouped)) == len(eligible)
    assert len(found) == len(candidates)
    for t in candidates:
        (s,) = [s for s in found if s['t_start'] <= t <= s['t_end']]
        assert s['preferred_event'] == expected[t]
        assert s['superevent_id'] == stack.event(
            expected[t])['superevent']
    for g in noisy:
        assert stack.event(g)['superevent'] is None


def test_sigkill_mid_burst_again_and_again_under_load(superevent_stack):
    """Ten bursts, each with the superevent worker SIGKILLed in the middle
    of it while two CPU burners compete with the workers: no event is ever
    left out. Before the intake, about one round in five lost the alert
    that the killed worker had popped from Redis but not yet recorded."""
    stack = superevent_stack
    pipelines = ['gstlal', 'pycbc', 'spiir', 'mbtaonline']
    burners = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
               for _ in range(2)]
    mid_pass = 0
    try:
        for _ in range(10):
            t = fresh_time()
            before = stack.worker_log().count('Handled new alert')
            ids = []
            for n in range(16):
                ids.append(stack.upload(pipelines[n % 4], t + 0.005 * n,
                                        snr=10.0 + n))
                if n == 8:
                    # Right after a batch: the next one is being read.
                    wait_for(lambda: stack.worker_log().count(
                        'Handled new alert') >= before + 4, timeout=60,
                        what='the worker to get going')
                    stack.kill_superevent_worker()
                    done = stack.worker_log().count('Handled new alert')
                    mid_pass += done - before < n + 1
            stack.start_superevent_worker()
            stack.wait_superevents(t, one_with(*ids), timeout=60)
            # The events are added before the superevent's fields change:
            # read it once the pass is over.
            stack.wait_idle()
            (s,) = stack.superevents(t)
            assert s['preferred_event'] == ids[-1]  # the loudest
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert mid_pass >= 5, 'the kills came too late to test anything'
    stack.wait_idle()
