"""The mock-event stream, driven by beat through real workers into the
session's local GraceDb: the copies of one candidate become one MDC
superevent, which the mock advocate then judges; a burst notice waits for
the local GCN feed."""
import os

import pytest

from gwcelery.util.waiting import wait_for
from gwcelery.util.xml import parse
from gwcelery.vtp import feed

pytestmark = pytest.mark.slow

CONF = '''\
from tests.conf import *  # noqa
mock_events_enabled = True
mock_events_period = 8.0
mock_events_advocate_delay = 2.0
mock_events_grb_probability = 1.0
mock_events_seed = 3
'''

PIPELINES = ('gstlal', 'pycbc', 'MBTAOnline')


def clusters(events, width=0.05):
    """Events grouped by time: those within width seconds of each other."""
    groups = []
    for event in sorted(events, key=lambda e: e['gpstime']):
        if groups and event['gpstime'] - groups[-1][-1]['gpstime'] < width:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def test_beat_uploads_a_candidate_that_becomes_one_superevent(
        tmp_path, gracedb, redis_client, start_worker, start_beat):
    from gwcelery.tasks.first2years import gps_now
    (tmp_path / 'conf_mock.py').write_text(CONF)
    env = {'CELERY_CONFIG_MODULE': 'conf_mock', 'PYTHONPATH':
           f'{tmp_path}{os.pathsep}{os.environ["PYTHONPATH"]}'}
    start = gps_now()
    general = start_worker('mock-general', 'celery', '-c', '4', env=env)
    start_worker('mock-superevent', 'superevent', '-c', '1',
                 '--prefetch-multiplier', '1', env=env)
    start_beat(env=env)

    def first_candidate():
        events = list(gracedb.events(f'{start - 86400:.3f} .. {start + 600:.3f}'))
        mdc = [e for e in events if e['search'] == 'MDC'
               and e['gpstime'] > start - 86400]
        for group in clusters(mdc):
            if len(group) == len(PIPELINES) and all(
                    e['superevent'] for e in group):
                return group
        return None

    group = wait_for(first_candidate, timeout=90, interval=0.5,
                     what='the copies of a mock event to join a superevent')
    # The first upload of the stream made them, in a fresh pool process.
    assert 'Mock event 0: ' in general.log()
    assert 'raised unexpected' not in general.log(), general.log()
    assert sorted(e['pipeline'] for e in group) == sorted(PIPELINES)
    assert {e['group'] for e in group} == {'CBC'}
    # Times moved to the present by whole sidereal days (the bank is from
    # 2017), within a day of now; copies a few milliseconds apart.
    times = [e['gpstime'] for e in group]
    assert start - 86164.0905 < min(times) and max(times) < gps_now()
    assert max(times) - min(times) < 0.011
    superevent_id, = {e['superevent'] for e in group}
    assert superevent_id.startswith('MS')
    superevent = gracedb.superevent(superevent_id).json()
    assert superevent['category'] == 'MDC'
    assert sorted(superevent['gw_events']) == sorted(e['graceid']
                                                     for e in group)
    # Each copy gets its PSD, uploaded after it as psd.xml.gz (by a task of
    # its own, which may still be on its way once the superevent exists).
    def files_with_psd(graceid):
        files = gracedb.files(graceid).json()
        return files if 'psd.xml.gz' in files else None

    for event in group:
        files = wait_for(lambda: files_with_psd(event['graceid']),
                         timeout=30, interval=0.2,
                         what=f'the PSD of {event["graceid"]}')
        assert 'coinc.xml' in files

    # The mock advocate judges the superevent.
    labels = wait_for(
        lambda: {'ADVOK', 'ADVNO'} & set(
            gracedb.superevent(superevent_id).json()['labels']),
        timeout=60, interval=0.5, what='the mock advocate')
    assert len(labels) == 1

    # A burst notice, a second or so after the candidate, waits in the
    # local feed's queue (no feed runs here).
    def notices():
        return [parse(n, 1 << 20) for n in redis_client.lrange(
            feed.QUEUE_KEY, 0, -1)]
    roots = wait_for(notices, timeout=30, what='a mock GRB notice')
    from astropy.time import Time
    grb_times = [Time(r.findtext('.//ISOTime').rstrip('Z'), format='isot',
                      scale='utc').gps for r in roots]
    assert any(0.4 < t - min(times) < 1.6 for t in grb_times), (grb_times,
                                                                times)
