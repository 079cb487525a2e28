"""The safety net: events that no alert brought are grouped all the same.

A second local GraceDb on the session's database, publishing no LVAlerts,
plays a GraceDb whose announcement went astray: what is uploaded through
it reaches the database but no listener. The reconciliation (every second
here, for events created 2 to 30 seconds ago) must find the eligible event
and hand it to the superevent manager, with a warning, and leave the
ineligible one alone.
"""
import time

import pytest

from gwcelery.util.waiting import wait_for

from .fixtures.superevents import PIPELINES, event_file, fresh_time

pytestmark = pytest.mark.slow


def test_an_event_nobody_announced_is_grouped(
        reconciling_superevent_stack, start_gracedb, gracedb_server):
    from ligo.gracedb.rest import GraceDb
    stack = reconciling_superevent_stack
    silent = start_gracedb(database=gracedb_server.database)
    client = GraceDb(service_url=silent.url, force_noauth=True)

    def upload(gpstime, far):
        group, pipeline = PIPELINES['gstlal']
        filename, data = event_file('gstlal', gpstime, far)
        return client.create_event(group, pipeline, filename,
                                   search='AllSky',
                                   filecontents=data).json()['graceid']

    try:
        t = fresh_time()
        started = time.monotonic()
        lost = upload(t, 1e-10)
        noisy = upload(t + 30, 1e-2)
        (s,) = stack.wait_superevents(
            t, lambda f: len(f) == 1 and f[0]['gw_events'] == [lost],
            timeout=60)
        took = time.monotonic() - started
    finally:
        client.close()
    assert s['preferred_event'] == lost
    # Not before it is 2 s old (GraceDb's creation times are whole seconds,
    # hence 1), and within a few periods after, on a busy machine.
    assert 1 <= took < 20
    warning = f'Event {lost} (created'
    log = stack.general_log()
    assert warning in log
    assert 'should be in a superevent but is not' in log
    assert stack.handled(lost) >= 1
    # Grouped, it is not handed over again; the noisy event never is.
    count = log.count(warning)
    wait_for(lambda: stack.general_log().count(
        'gwcelery.tasks.superevents.reconcile') >= log.count(
        'gwcelery.tasks.superevents.reconcile') + 6, timeout=60,
        what='three more reconciliations')
    log = stack.general_log()
    assert log.count(warning) == count
    assert f'Event {noisy} ' not in log
    assert stack.event(noisy)['superevent'] is None
