"""gwcelery.tasks.gracedb on a real worker against the local GraceDb.

The worker reaches the server through a real HTTP proxy (tests.fixtures.
gracedb.FaultyProxy) that can fail a chosen number of requests with a
chosen status code, or drop the connection, before it forwards again.
"""
import socket
from pathlib import Path

import pytest
import requests
from lxml import etree

from gwcelery import app
from gwcelery.tasks import gracedb

from .conftest import Service
from .fixtures.gracedb import FaultyProxy

DATA = Path(__file__).parent / 'data'
COINC = (DATA / 'gracedb' / 'coinc.xml').read_bytes()
PSD = (DATA / 'gracedb' / 'psd.xml.gz').read_bytes()
TIMEOUT = 60


@pytest.fixture(scope='module')
def proxy(gracedb_server):
    proxy = FaultyProxy(gracedb_server.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope='module')
def worker(redis_url, proxy, tmp_path_factory):
    hostname = f'gracedb-tasks@{socket.gethostname()}'
    service = Service(
        ['worker', '-Q', 'celery', '-n', hostname, '-l', 'info', '-c', '2',
         '--without-mingle', '--without-gossip'],
        tmp_path_factory.mktemp('worker') / 'worker.log', hostname=hostname,
        env={'GWCELERY_TEST_GRACEDB_URL': proxy.url})
    yield service.wait_ready()
    service.stop()


@pytest.fixture
def healthy(proxy, worker):
    proxy.fail(0)
    return proxy


def run(signature):
    return signature.delay().get(timeout=TIMEOUT)


# The GraceDb server lives for the whole session: this module's events are
# at GPS times around 1.3e9, away from the superevent scenarios' (1.4e9 on),
# so that its time-range searches find only its own.
def new_event(gps):
    coinc = COINC.replace(b'1186436412', str(gps).encode())
    return run(gracedb.create_event.s(coinc, 'AllSky', 'gstlal', 'CBC'))


def test_event_tasks(healthy):
    event = new_event(1300000000)
    graceid = event['graceid']
    assert event['instruments'] == 'H1,L1,V1'
    assert run(gracedb.get_event.s(graceid)) == event
    entry = run(gracedb.upload.s(PSD, 'psd.xml.gz', graceid, 'PSD',
                                 ['psd']))
    assert entry['filename'] == 'psd.xml.gz' and entry['tag_names'] == \
        ['psd']
    # Bytes go through the JSON result backend intact.
    assert run(gracedb.download.s('psd.xml.gz', graceid)) == PSD
    comment = run(gracedb.upload.s(None, None, graceid, 'no file'))
    assert comment['filename'] == ''
    run(gracedb.create_tag.s('sky_loc', comment['N'], graceid))
    run(gracedb.remove_tag.s('psd', entry['N'], graceid))
    log = run(gracedb.get_log.s(graceid))
    assert [(e['N'], e['tag_names']) for e in log] == [
        (1, []), (2, []), (3, ['sky_loc'])]
    run(gracedb.create_label.s('DQV', graceid))
    run(gracedb.create_label.s('INJ', graceid))
    run(gracedb.remove_label.s('DQV', graceid))
    assert run(gracedb.get_labels.s(graceid)) == ['INJ']
    found = run(gracedb.get_events.s('gpstime: 1299999999 .. 1300000001'))
    assert [e['graceid'] for e in found] == [graceid]
    replaced = run(gracedb.replace_event.s(
        graceid, COINC.replace(b'1186436412', b'1300000005')))
    assert replaced['gpstime'] == pytest.approx(1300000005.173834723)


def test_superevent_tasks(healthy):
    first = new_event(1300100000)['graceid']
    second = new_event(1300100001)['graceid']
    superevent = run(gracedb.create_superevent.s(
        first, 1300100000.17, 1300099999.0, 1300100001.0))
    sid = superevent['superevent_id']
    assert superevent['preferred_event'] == first
    run(gracedb.add_event_to_superevent.s(sid, second))
    updated = run(gracedb.update_superevent.s(
        sid, t_end=1300100002.5, preferred_event=second))
    assert updated['preferred_event'] == second
    assert updated['t_end'] == 1300100002.5
    run(gracedb.remove_event_from_superevent.s(sid, first))
    assert run(gracedb.get_superevent.s(sid))['gw_events'] == [second]
    found = run(gracedb.get_superevents.s(
        'category: production 1300099990 .. 1300100010'))
    assert [s['superevent_id'] for s in found] == [sid]
    run(gracedb.upload.s(b'FITS', 'bayestar.fits.gz', sid, 'sky map',
                         ['sky_loc']))
    voevent = run(gracedb.create_voevent.s(
        sid, 'preliminary', skymap_type='bayestar',
        skymap_filename='bayestar.fits.gz', ProbHasNS=0.2))
    xml = run(gracedb.download.s(voevent['filename'], sid))
    assert etree.fromstring(xml).get('ivorn') == voevent['ivorn']
    assert [v['N'] for v in run(gracedb.get_voevents.s(sid))] == [1]
    confirmed = run(gracedb.confirm_as_gw.s(sid))
    assert confirmed['superevent_id'].startswith('GW')


def test_retries_503_with_growing_backoff(healthy):
    graceid = new_event(1300200000)['graceid']
    healthy.fail(3, 503)
    assert run(gracedb.get_event.s(graceid))['graceid'] == graceid
    assert healthy.failed == 3 and healthy.forwarded == 1
    gaps = [b - a for a, b in zip(healthy.times, healthy.times[1:])]
    base = app.conf.gracedb_retry_backoff
    # The countdown of retry n is at least base * 2**n / 2 (jitter).
    for n, gap in enumerate(gaps):
        assert gap >= 0.9 * base * 2 ** n / 2, gaps


@pytest.mark.parametrize('status', [408, 409, 429, 500, 502, 504])
def test_retries_transient_status(healthy, status):
    healthy.fail(1, status)
    assert run(gracedb.get_events.s('gpstime: 0 .. 1')) == []
    assert healthy.failed == 1 and healthy.forwarded == 1


def test_retries_dropped_connections(healthy):
    graceid = new_event(1300300000)['graceid']
    healthy.fail(2, 'drop')
    assert run(gracedb.get_labels.s(graceid)) == []
    assert healthy.failed == 2 and healthy.forwarded == 1


@pytest.mark.parametrize('status', [400, 403, 404, 413])
def test_never_retries_other_4xx(healthy, status):
    healthy.fail(1, status)
    with pytest.raises(gracedb.GraceDbError) as info:
        run(gracedb.get_event.s('G1'))
    assert info.value.status_code == status
    assert info.value.reason == 'injected failure'
    assert healthy.failed == 1 and healthy.forwarded == 0


def test_real_404_is_final(healthy):
    with pytest.raises(gracedb.GraceDbError) as info:
        run(gracedb.get_event.s('G999999999'))
    assert info.value.status_code == 404
    assert 'No event G999999999' in info.value.reason


def test_gives_up_after_max_retries(healthy):
    healthy.fail(1000, 503)
    with pytest.raises(gracedb.GraceDbError) as info:
        run(gracedb.get_event.s('G1'))
    assert info.value.status_code == 503
    assert healthy.failed == app.conf.gracedb_max_retries + 1


# -- in-process: the client and the classification ----------------------------

def test_client_is_cached_and_rebuilt_when_the_url_changes(gracedb_url,
                                                           proxy):
    first = gracedb.client()
    assert gracedb.client() is first
    assert first._service_url == gracedb_url
    app.conf.gracedb_url = proxy.url
    try:
        second = gracedb.client()
        assert second is not first and second._service_url == proxy.url
        assert second.ping().json()['links']['self'] == proxy.url
    finally:
        app.conf.gracedb_url = gracedb_url
    assert gracedb.client()._service_url == gracedb_url


def test_requests_time_out(gracedb_url):
    # A server that accepts connections and never answers.
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    url = f'http://127.0.0.1:{listener.getsockname()[1]}/api/'
    app.conf.gracedb_url, app.conf.gracedb_timeout = url, 0.5
    try:
        with pytest.raises(requests.Timeout) as info:
            gracedb.client().event('G1')
        assert gracedb.is_transient(info.value)
    finally:
        app.conf.gracedb_url, app.conf.gracedb_timeout = gracedb_url, 60.0
        listener.close()


def _http_error(status):
    from ligo.gracedb.exceptions import HTTPError
    response = requests.Response()
    response.status_code = status
    response._content = b''
    return HTTPError(response)


@pytest.mark.parametrize('status,transient', [
    (400, False), (401, False), (403, False), (404, False), (413, False),
    (408, True), (409, True), (429, True), (500, True), (502, True),
    (503, True), (504, True)])
def test_is_transient_status(status, transient):
    assert gracedb.is_transient(_http_error(status)) is transient


def test_is_transient_other_errors():
    assert gracedb.is_transient(requests.ConnectionError('refused'))
    assert gracedb.is_transient(requests.ReadTimeout('slow'))
    assert not gracedb.is_transient(ValueError('bad group'))
    assert not gracedb.is_transient(KeyError('links'))



def test_task_survives_its_worker_process_being_killed(healthy, worker):
    import os
    import signal

    from gwcelery.util.waiting import wait_for

    graceid = new_event(1300400000)['graceid']
    healthy.fail(1, 5.0)  # the first request hangs for 5 s
    result = gracedb.get_labels.delay(graceid)

    def running_pid():
        active = app.control.inspect([worker.hostname], timeout=1).active()
        for task in (active or {}).get(worker.hostname, []):
            if task['id'] == result.id:
                return task['worker_pid']
    pid = wait_for(running_pid, timeout=20, what='the task to run')
    os.kill(pid, signal.SIGKILL)
    assert result.get(timeout=TIMEOUT) == []
    # Run again by another process: the second request went through.
    assert healthy.failed == 1 and healthy.forwarded >= 1


def test_called_as_function_errors_come_at_once(gracedb_url, proxy):
    """A task called directly (in-process) does not retry; the caller gets
    a GraceDbError that is_transient classifies."""
    app.conf.gracedb_url = proxy.url
    try:
        proxy.fail(1, 503)
        with pytest.raises(gracedb.GraceDbError) as info:
            gracedb.get_event('G1')
        assert info.value.status_code == 503
        assert gracedb.is_transient(info.value)
        # One failed request, not retried (the service root, fetched by the
        # new client first, is not counted).
        assert proxy.failed == 1 and proxy.forwarded == 0
        proxy.fail(0)
        with pytest.raises(gracedb.GraceDbError) as info:
            gracedb.get_event('G999999999')
        assert info.value.status_code == 404
        assert not gracedb.is_transient(info.value)
    finally:
        app.conf.gracedb_url = gracedb_url
        proxy.fail(0)
