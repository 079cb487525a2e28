"""The local GraceDb through the real ligo-gracedb client over real HTTP.

The server is a ``gwcelery localgracedb`` subprocess (the gracedb_server
fixture) that publishes LVAlerts on the test Redis, where these tests read
them back from the streams of the embedded LVAlert transport.
"""
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import voeventparse
from ligo.gracedb.exceptions import HTTPError
from lxml import etree

from gwcelery.localgracedb import ids
from gwcelery.lvalert.transport.redis_streams import stream_key
from gwcelery.util.waiting import free_port, wait_for

DATA = Path(__file__).parent / 'data'
COINC = (DATA / 'gracedb' / 'coinc.xml').read_bytes()
PSD = (DATA / 'gracedb' / 'psd.xml.gz').read_bytes()
FERMI = (DATA / 'gcn' / 'fermi_grb_gcn.xml').read_bytes()
COINC_TIME = 1186436412
# One PNG pixel, for the inline image of the HTML page.
PNG = bytes.fromhex(
    '89504e470d0a1a0a0000000d4948445200000001000000010806000000'
    '1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082')

_day = iter(range(1, 10 ** 6))


def coinc_at(gps_seconds):
    """coinc.xml with its time moved to another integer GPS second."""
    return COINC.replace(str(COINC_TIME).encode(), str(gps_seconds).encode())


def fresh_time():
    """A GPS time on a UTC day no other test uses, so that superevent ids
    and time-range searches see only this test's objects."""
    return 1300000000 + 86400 * next(_day) + 43200


def alerts(redis_client, node):
    """Alerts published so far on a node, oldest first."""
    return [json.loads(fields[b'alert'])
            for _, fields in redis_client.xrange(stream_key(node))]


def wait_alert(redis_client, node, **match):
    def find():
        return [a for a in alerts(redis_client, node)
                if all(a.get(k) == v for k, v in match.items())]
    return wait_for(find, timeout=10, what=f'alert {match} on {node}')


def create_cbc(gracedb, gps=None, **kwargs):
    gps = gps or fresh_time()
    kwargs.setdefault('search', 'AllSky')
    return gracedb.create_event('CBC', 'gstlal', 'coinc.xml',
                                filecontents=coinc_at(gps), **kwargs).json()


# -- service root ---------------------------------------------------------------

def test_service_root_has_what_the_client_reads(gracedb, gracedb_url):
    assert gracedb.links['events'] == gracedb_url + 'events/'
    assert gracedb.links['superevents'] == gracedb_url + 'superevents/'
    assert 'CBC' in gracedb.groups and 'gstlal' in gracedb.pipelines
    assert 'AllSky' in gracedb.searches and 'ADVOK' in gracedb.allowed_labels
    assert gracedb.superevent_categories == {
        'P': 'Production', 'T': 'Test', 'M': 'MDC'}
    assert gracedb.voevent_types['PR'] == 'preliminary'
    # Every template that the client's methods look up is there.
    source = Path(__import__('ligo.gracedb.rest').gracedb.rest.__file__
                  ).read_text()
    used = set(re.findall(r"templates\['([\w-]+)'\]", source))
    used -= {'event-reserve-template', 'event-upload-template',
             'superevent-pipeline-preferred-event-list-template'}
    missing = {t for t in used if t not in gracedb.templates
               and 'signoff' not in t and 'permission' not in t
               and 'notice' not in t and 'gwtc' not in t}
    assert not missing


# -- events -----------------------------------------------------------------------

def test_create_cbc_event_from_coinc_xml(gracedb, gracedb_url, redis_client):
    gps = fresh_time()
    event = create_cbc(gracedb, gps, labels=['INJ'])
    assert re.fullmatch(r'G\d+', event['graceid'])
    assert event['gpstime'] == pytest.approx(gps + 0.173834723)
    assert event['far'] == pytest.approx(5.176954877338635e-16)
    assert event['instruments'] == 'H1,L1,V1'
    assert event['labels'] == ['INJ']
    assert len(event['extra_attributes']['SingleInspiral']) == 3
    assert event['extra_attributes']['CoincInspiral']['snr'] == \
        pytest.approx(15.61787480055296)
    assert event['links']['self'] == \
        f'{gracedb_url}events/{event["graceid"]}'
    assert gracedb.event(event['graceid']).json() == event
    # The original file is kept, and its upload is in the log.
    assert gracedb.files(event['graceid'], 'coinc.xml').read() == \
        coinc_at(gps)
    log = gracedb.logs(event['graceid']).json()['log']
    assert log[0]['filename'] == 'coinc.xml' and log[0]['file_version'] == 0
    alert, = wait_alert(redis_client, 'cbc_gstlal', uid=event['graceid'])
    assert alert['alert_type'] == 'new'
    assert alert['data'] == event and alert['object'] == event


@pytest.mark.parametrize('group,search,prefix,node', [
    ('Test', 'AllSky', 'T', 'test_gstlal'),
    ('CBC', 'MDC', 'M', 'cbc_gstlal'),
])
def test_test_and_mdc_event_ids(gracedb, redis_client, group, search,
                                prefix, node):
    event = gracedb.create_event(group, 'gstlal', 'coinc.xml',
                                 filecontents=coinc_at(fresh_time()),
                                 search=search).json()
    assert re.fullmatch(prefix + r'\d+', event['graceid'])
    wait_alert(redis_client, node, uid=event['graceid'], alert_type='new')


def test_create_burst_events(gracedb, redis_client):
    gps = fresh_time()
    cwb = gracedb.create_event(
        'Burst', 'CWB', 'trigger.txt', search='AllSky', filecontents=(
            f'time: {gps}.5 {gps}.51\nifo: H1 L1\nduration: 0.02\n'
            'frequency: 240\nfar: 1.5e-9\n').encode()).json()
    assert cwb['gpstime'] == gps + 0.5 and cwb['far'] == 1.5e-9
    assert cwb['extra_attributes']['MultiBurst']['duration'] == 0.02
    olib = gracedb.create_event(
        'Burst', 'oLIB', 'olib.json', search='AllSky',
        filecontents=json.dumps({'gpstime': gps + 1.0, 'FAR': 2e-8,
                                 'quality': 15.0, 'frequency': 300.0})
    ).json()
    assert olib['far'] == 2e-8
    assert olib['extra_attributes']['LalInferenceBurst']['quality_mean'] \
        == 15.0
    wait_alert(redis_client, 'burst_cwb', uid=cwb['graceid'])
    wait_alert(redis_client, 'burst_olib', uid=olib['graceid'])


def test_create_external_event_from_gcn_notice(gracedb, redis_client):
    event = gracedb.create_event('External', 'Fermi', 'fermi.xml',
                                 search='GRB', filecontents=FERMI).json()
    assert re.fullmatch(r'E\d+', event['graceid'])
    grb = event['extra_attributes']['GRB']
    assert grb['trigger_id'] == '548848711'
    assert (grb['ra'], grb['dec'], grb['error_radius']) == \
        (140.05, -39.0499, 5.6)
    # 2018-05-24T09:58:26.31 UTC.
    assert event['gpstime'] == pytest.approx(1211191124.31)
    wait_alert(redis_client, 'external_fermi', uid=event['graceid'])


def test_external_event_search_by_trigger_id_and_em_events(gracedb):
    first = gracedb.create_event('External', 'Swift', 'swift.xml',
                                 search='GRB', filecontents=(
                                     DATA / 'gcn' / 'swift_grb_gcn.xml'
                                 ).read_bytes()).json()
    query = 'group: External pipeline: Swift grbevent.trigger_id = "1123129"'
    assert first['graceid'] in [e['graceid'] for e in gracedb.events(query)]
    assert not list(gracedb.events(
        'group: External grbevent.trigger_id = "999"'))
    # External events join superevents as em_events.
    gps = fresh_time()
    event = create_cbc(gracedb, gps)
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    event['graceid']).json()[
                                        'superevent_id']
    gracedb.add_event_to_superevent(sid, first['graceid'])
    superevent = gracedb.superevent(sid).json()
    assert superevent['em_events'] == [first['graceid']]
    assert superevent['gw_events'] == [event['graceid']]


def test_external_event_needs_a_voevent(gracedb):
    with pytest.raises(HTTPError) as info:
        gracedb.create_event('External', 'Fermi', 'coinc.xml', search='GRB',
                             filecontents=COINC)
    assert info.value.status_code == 400
    assert 'VOEvent' in info.value.text


def test_replace_event(gracedb, redis_client):
    event = create_cbc(gracedb)
    gps = fresh_time()
    response = gracedb.replace_event(event['graceid'], 'coinc.xml',
                                     filecontents=coinc_at(gps))
    assert response.status_code == 202
    replaced = gracedb.event(event['graceid']).json()
    assert replaced['gpstime'] == pytest.approx(gps + 0.173834723)
    files = gracedb.files(event['graceid']).json()
    assert {'coinc.xml', 'coinc.xml,0', 'coinc.xml,1'} <= set(files)
    assert gracedb.files(event['graceid'], 'coinc.xml,0').read() == \
        coinc_at(int(event['gpstime']))
    assert gracedb.files(event['graceid'], 'coinc.xml').read() == \
        coinc_at(gps)
    update, = wait_alert(redis_client, 'cbc_gstlal', uid=event['graceid'],
                         alert_type='update')
    assert update['data']['gpstime'] == replaced['gpstime']


def test_logs_files_and_tags(gracedb, redis_client):
    graceid = create_cbc(gracedb)['graceid']
    entry = gracedb.write_log(graceid, 'PSD', filename='psd.xml.gz',
                              filecontents=PSD, tag_name=['psd']).json()
    assert entry['N'] == 2 and entry['tag_names'] == ['psd']
    assert entry['filename'] == 'psd.xml.gz' and entry['file_version'] == 0
    again = gracedb.write_log(graceid, 'PSD again', filename='psd.xml.gz',
                              filecontents=PSD[:1000]).json()
    assert again['file_version'] == 1
    assert gracedb.files(graceid, 'psd.xml.gz').read() == PSD[:1000]
    assert gracedb.files(graceid, 'psd.xml.gz,0').read() == PSD
    comment = gracedb.write_log(graceid, 'just words').json()
    assert comment['filename'] == '' and comment['file_version'] is None
    assert [e['N'] for e in gracedb.logs(graceid).json()['log']] == \
        [1, 2, 3, 4]
    assert gracedb.logs(graceid, 2).json()['comment'] == 'PSD'
    gracedb.add_tag(graceid, 3, 'sky_loc')
    assert [t['name'] for t in gracedb.tags(graceid, 3).json()['tags']] \
        == ['sky_loc']
    gracedb.remove_tag(graceid, 2, 'psd')
    assert gracedb.logs(graceid, 2).json()['tag_names'] == []
    log_alert = wait_alert(redis_client, 'cbc_gstlal', uid=graceid,
                           alert_type='log')[0]
    assert log_alert['data']['filename'] == 'psd.xml.gz'
    assert log_alert['data']['tag_names'] == ['psd']


def test_labels(gracedb, redis_client):
    graceid = create_cbc(gracedb)['graceid']
    gracedb.write_label(graceid, 'DQV')
    gracedb.write_label(graceid, 'DQV')  # idempotent
    gracedb.write_label(graceid, 'EM_READY')
    names = [label['name']
             for label in gracedb.labels(graceid).json()['labels']]
    assert names == ['DQV', 'EM_READY']
    assert gracedb.labels(graceid, 'DQV').json()['name'] == 'DQV'
    gracedb.remove_label(graceid, 'DQV')
    assert gracedb.event(graceid).json()['labels'] == ['EM_READY']
    added = wait_alert(redis_client, 'cbc_gstlal', uid=graceid,
                       alert_type='label_added')
    assert [a['data']['name'] for a in added] == ['DQV', 'EM_READY']
    removed, = wait_alert(redis_client, 'cbc_gstlal', uid=graceid,
                          alert_type='label_removed')
    assert removed['data']['name'] == 'DQV'
    assert removed['object']['labels'] == ['EM_READY']
    with pytest.raises(HTTPError) as info:
        gracedb.remove_label(graceid, 'DQV')
    assert info.value.status_code == 404
    # A log entry may apply a label too.
    gracedb.write_log(graceid, 'vetted', label='ADVOK')
    assert gracedb.event(graceid).json()['labels'] == ['EM_READY', 'ADVOK']
    wait_alert(redis_client, 'cbc_gstlal', uid=graceid,
               alert_type='label_added', data={'name': 'ADVOK'})


def test_event_search(gracedb):
    gps = fresh_time()
    first = create_cbc(gracedb, gps, labels=['INJ'])
    second = gracedb.create_event(
        'Burst', 'CWB', 't.txt', search='AllSky', filecontents=(
            f'time: {gps + 10}\nifo: H1 L1\nfar: 1e-4\n').encode()).json()
    third = create_cbc(gracedb, gps + 20)
    window = f'gpstime: {gps - 1} .. {gps + 30}'

    def found(query, **kwargs):
        return [e['graceid'] for e in gracedb.events(query, **kwargs)]

    ids_all = [first['graceid'], second['graceid'], third['graceid']]
    assert found(window) == ids_all
    assert found(f'{window} CBC') == [first['graceid'], third['graceid']]
    assert found(f'{window} far < 1e-6') == [first['graceid'],
                                              third['graceid']]
    assert found(f'{window} far >= 1e-6') == [second['graceid']]
    assert found(f'{window} INJ') == [first['graceid']]
    assert found(f'{window} ~INJ pipeline: gstlal') == [third['graceid']]
    assert found(window, orderby='-gpstime') == ids_all[::-1]
    # Paging: the client follows links.next.
    assert found(window, count=1) == ids_all
    assert gracedb.num_events(window) == 3


def _pages(url, direction='next'):
    """The raw JSON pages of a search, following links.next (or
    links.previous) until it is null."""
    pages = []
    while url:
        pages.append(requests.get(url).json())
        # Both links are always there, null where there is no such page.
        assert {'self', 'next', 'previous', 'first', 'last'} <= \
            set(pages[-1]['links'])
        url = pages[-1]['links'][direction]
    return pages


def test_search_pages_link_both_ways(gracedb, gracedb_url):
    gps = fresh_time()
    made = [create_cbc(gracedb, gps + i)['graceid'] for i in range(5)]
    window = f'gpstime: {gps - 1} .. {gps + 10}'
    url = f'{gracedb_url}events/?' + urlencode({'query': window, 'count': 2})
    pages = _pages(url)
    assert [[e['graceid'] for e in p['events']] for p in pages] == \
        [made[0:2], made[2:4], made[4:]]
    assert [p['start'] for p in pages] == [0, 2, 4]
    assert pages[0]['links']['previous'] is None
    assert pages[-1]['links']['next'] is None
    assert all(p['numRows'] == 5 for p in pages)
    assert pages[0]['links']['last'] == pages[-1]['links']['self']
    assert pages[-1]['links']['first'] == pages[0]['links']['self']
    # Back from the last page to the first one.
    backwards = _pages(pages[-1]['links']['self'], 'previous')
    assert [p['start'] for p in backwards] == [4, 2, 0]
    # A single page has neither.
    whole = requests.get(f'{gracedb_url}events/', params={
        'query': window}).json()
    assert whole['links']['next'] is None and \
        whole['links']['previous'] is None
    # The client's iterator walks every page.
    assert [e['graceid'] for e in gracedb.events(window, count=2)] == made
    assert [e['graceid'] for e in gracedb.events(window, count=1)] == made


def test_superevent_search_pages(gracedb, gracedb_url):
    gps = fresh_time()
    made = []
    for i in range(3):
        event = create_cbc(gracedb, gps + 10 * i)
        made.append(gracedb.create_superevent(
            gps + 10 * i - 1, gps + 10 * i, gps + 10 * i + 1,
            event['graceid']).json()['superevent_id'])
    window = f't_0: {gps - 1} .. {gps + 30}'
    pages = _pages(f'{gracedb_url}superevents/?' + urlencode(
        {'query': window, 'count': 2}))
    assert [[s['superevent_id'] for s in p['superevents']]
            for p in pages] == [made[:2], made[2:]]
    assert pages[0]['links']['previous'] is None
    assert pages[1]['links']['previous'] == pages[0]['links']['self']
    assert [s['superevent_id'] for s in gracedb.superevents(
        window, count=1)] == made


def test_lists_of_one_object_are_one_page(gracedb, gracedb_url):
    gps = fresh_time()
    event = create_cbc(gracedb, gps, labels=['INJ'])
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1, event['graceid'],
                                    labels=['EM_READY']).json()[
                                        'superevent_id']
    gracedb.create_voevent(sid, 'preliminary')
    base = f'{gracedb_url}superevents/{sid}/'
    for url, key in [(f'{gracedb_url}events/{event["graceid"]}/log/', 'log'),
                     (f'{gracedb_url}events/{event["graceid"]}/labels/',
                      'labels'),
                     (f'{base}logs/', 'log'), (f'{base}labels/', 'labels'),
                     (f'{base}voevents/', 'voevents'),
                     (f'{base}events/', 'events')]:
        body = requests.get(url).json()
        assert body['numRows'] == len(body[key]) > 0, url
        assert body['links'] == {'self': url, 'next': None,
                                 'previous': None, 'first': url,
                                 'last': url}, url


def test_bad_query_is_400(gracedb):
    with pytest.raises(HTTPError) as info:
        list(gracedb.events('colour: blue'))
    assert info.value.status_code == 400
    assert "unknown field 'colour'" in info.value.text


# -- superevents -----------------------------------------------------------------

def test_superevent_lifecycle(gracedb, gracedb_url, redis_client):
    gps = fresh_time()
    preferred = create_cbc(gracedb, gps)
    other = create_cbc(gracedb, gps + 1)
    date = ids.date_code(gps)
    superevent = gracedb.create_superevent(
        gps - 1, gps, gps + 1, preferred['graceid'], category='production',
        labels=['EM_READY']).json()
    sid = superevent['superevent_id']
    assert sid == f'S{date}a'
    assert superevent['category'] == 'Production'
    assert superevent['gw_events'] == [preferred['graceid']]
    assert superevent['preferred_event_data']['graceid'] == \
        preferred['graceid']
    assert superevent['far'] == preferred['far']
    assert superevent['labels'] == ['EM_READY']
    assert superevent['links']['self'] == f'{gracedb_url}superevents/{sid}/'
    assert gracedb.event(preferred['graceid']).json()['superevent'] == sid
    new, = wait_alert(redis_client, 'superevent', uid=sid, alert_type='new')
    assert new['object']['superevent_id'] == sid

    # A second superevent on the same day gets the next letter.
    lone = create_cbc(gracedb, gps + 3600)
    second = gracedb.create_superevent(gps + 3599, gps + 3600, gps + 3601,
                                       lone['graceid']).json()
    assert second['superevent_id'] == f'S{date}b'

    gracedb.add_event_to_superevent(sid, other['graceid'])
    wait_alert(redis_client, 'superevent', uid=sid, alert_type='event_added')
    updated = gracedb.update_superevent(
        sid, t_end=gps + 2, preferred_event=other['graceid']).json()
    assert updated['t_end'] == gps + 2
    assert updated['preferred_event'] == other['graceid']
    assert updated['gw_events'] == [preferred['graceid'], other['graceid']]
    gracedb.remove_event_from_superevent(sid, preferred['graceid'])
    wait_alert(redis_client, 'superevent', uid=sid,
               alert_type='event_removed')
    assert gracedb.superevent(sid).json()['gw_events'] == \
        [other['graceid']]
    assert gracedb.event(preferred['graceid']).json()['superevent'] is None

    gracedb.write_label(sid, 'ADVREQ')
    assert gracedb.superevent(sid).json()['labels'] == ['EM_READY',
                                                        'ADVREQ']
    gracedb.remove_label(sid, 'EM_READY')
    label_alert, = wait_alert(redis_client, 'superevent', uid=sid,
                              alert_type='label_added')
    assert label_alert['data']['name'] == 'ADVREQ'

    entry = gracedb.write_log(sid, 'sky map', filename='bayestar.fits.gz',
                              filecontents=b'FITS' * 100,
                              tag_name=['sky_loc', 'public']).json()
    assert entry['tag_names'] == ['sky_loc', 'public']
    gracedb.add_tag(sid, entry['N'], 'em_follow')
    assert [t['name'] for t in gracedb.tags(sid, entry['N']).json()['tags']
            ] == ['sky_loc', 'public', 'em_follow']
    assert gracedb.files(sid, 'bayestar.fits.gz').read() == b'FITS' * 100
    assert 'bayestar.fits.gz,0' in gracedb.files(sid).json()

    found = [s['superevent_id'] for s in gracedb.superevents(
        f'category: production {gps - 10} .. {gps + 10}')]
    assert found == [sid]
    assert [s['superevent_id'] for s in gracedb.superevents(
        f't_0: {gps - 10} .. {gps + 4000}', orderby=['-t_0'])] == \
        [f'S{date}b', sid]

    members = [e['graceid'] for e in gracedb.events(f'superevent: {sid}')]
    assert members == [other['graceid']]

    confirmed = gracedb.confirm_superevent_as_gw(sid).json()
    assert confirmed['superevent_id'] == f'GW{date}'
    assert gracedb.superevent(sid).json()['gw_id'] == f'GW{date}'
    assert gracedb.superevent(f'GW{date}').json()['default_superevent_id'] \
        == sid
    wait_alert(redis_client, 'superevent', uid=f'GW{date}',
               alert_type='confirmed_as_gw')
    assert [e['graceid'] for e in gracedb.events(
        f'superevent: GW{date}')] == members
    with pytest.raises(HTTPError) as info:
        gracedb.confirm_superevent_as_gw(sid)
    assert info.value.status_code == 400


def test_superevent_ids_around_a_leap_second(gracedb):
    # The leap second 2016-12-31T23:59:60 UTC is GPS 1167264017.
    made = {}
    for gps in (1167264016, 1167264017, 1167264018):
        event = create_cbc(gracedb, gps)
        made[gps] = gracedb.create_superevent(
            gps, gps + 0.5, gps + 0.9, event['graceid']).json()
    assert [s['superevent_id'] for s in made.values()] == \
        ['S161231a', 'S161231b', 'S170101a']
    sid = made[1167264017]['superevent_id']
    notice = gracedb.create_voevent(sid, 'preliminary').json()
    root = etree.fromstring(gracedb.files(sid, notice['filename']).read())
    assert root.findtext('.//ISOTime') == '2016-12-31T23:59:60.500000Z'


def test_test_and_mdc_superevents(gracedb, redis_client):
    gps = fresh_time()
    date = ids.date_code(gps)
    test_event = gracedb.create_event('Test', 'gstlal', 'coinc.xml',
                                      filecontents=coinc_at(gps)).json()
    mdc_event = gracedb.create_event('CBC', 'gstlal', 'coinc.xml',
                                     search='MDC',
                                     filecontents=coinc_at(gps)).json()
    test = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                     test_event['graceid'],
                                     category='test').json()
    mdc = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    mdc_event['graceid'],
                                    category='mdc').json()
    assert test['superevent_id'] == f'TS{date}a'
    assert mdc['superevent_id'] == f'MS{date}a'
    wait_alert(redis_client, 'test_superevent', uid=test['superevent_id'])
    wait_alert(redis_client, 'mdc_superevent', uid=mdc['superevent_id'])
    assert [s['superevent_id'] for s in gracedb.superevents(
        f'category: test {gps - 1} .. {gps + 1}')] == [test['superevent_id']]


def test_superevent_rules_are_enforced(gracedb):
    gps = fresh_time()
    production = create_cbc(gracedb, gps)
    test_event = gracedb.create_event('Test', 'gstlal', 'coinc.xml',
                                      filecontents=coinc_at(gps)).json()
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    production['graceid']).json()[
                                        'superevent_id']

    def refused(call, text):
        with pytest.raises(HTTPError) as info:
            call()
        assert info.value.status_code == 400, info.value.text
        assert text in info.value.text

    refused(lambda: gracedb.add_event_to_superevent(
        sid, test_event['graceid']), 'Test event')
    refused(lambda: gracedb.create_superevent(
        gps - 1, gps, gps + 1, production['graceid']), 'already in')
    refused(lambda: gracedb.remove_event_from_superevent(
        sid, production['graceid']), 'preferred event')
    refused(lambda: gracedb.create_superevent(
        gps + 1, gps, gps + 2, test_event['graceid'], category='test'),
        't_start <= t_0')
    refused(lambda: gracedb.create_superevent(
        gps - 1, gps, gps + 1, 'G999999999'), 'does not exist')


def test_voevents(gracedb, gracedb_url, redis_client):
    gps = fresh_time()
    event = create_cbc(gracedb, gps)
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    event['graceid']).json()[
                                        'superevent_id']
    gracedb.write_log(sid, 'sky map', filename='bayestar.fits.gz',
                      filecontents=b'FITS')
    preliminary = gracedb.create_voevent(
        sid, 'preliminary', skymap_type='bayestar',
        skymap_filename='bayestar.fits.gz', ProbHasNS=0.9, BNS=0.95,
        Terrestrial=0.05).json()
    assert preliminary['N'] == 1
    assert preliminary['ivorn'] == f'ivo://gwnet/LVC#{sid}-1-Preliminary'
    assert preliminary['filename'] == f'{sid}-1-Preliminary.xml'
    root = etree.fromstring(gracedb.files(sid, preliminary['filename'])
                            .read())
    params = {p.get('name'): p.get('value') for p in root.iter('Param')}
    assert params['GraceID'] == sid and params['Packet_Type'] == '150'
    assert float(params['FAR']) == pytest.approx(event['far'])
    assert params['Pipeline'] == 'gstlal'
    assert params['Instruments'] == 'H1,L1,V1'
    assert params['skymap_fits'] == \
        f'{gracedb_url}superevents/{sid}/files/bayestar.fits.gz'
    assert float(params['HasNS']) == 0.9
    update = gracedb.create_voevent(
        sid, 'update', skymap_type='bayestar',
        skymap_filename='bayestar.fits.gz').json()
    root = etree.fromstring(gracedb.files(sid, update['filename']).read())
    assert root.findtext('Citations/EventIVORN') == preliminary['ivorn']
    assert [v['N'] for v in gracedb.voevents(sid).json()['voevents']] == \
        [1, 2]
    assert gracedb.voevents(sid, 2).json()['voevent_type'] == 'UP'
    voevent_alert, = wait_alert(redis_client, 'superevent', uid=sid,
                                alert_type='voevent', data=preliminary)
    assert voevent_alert['object']['superevent_id'] == sid
    # Refused: no such sky map; an update without a sky map.
    with pytest.raises(HTTPError) as info:
        gracedb.create_voevent(sid, 'preliminary',
                               skymap_filename='missing.fits')
    assert info.value.status_code == 400 and 'missing.fits' in \
        info.value.text
    response = requests.post(f'{gracedb_url}superevents/{sid}/voevents/',
                             data={'voevent_type': 'UP'})
    assert response.status_code == 400
    assert 'skymap_filename' in response.json()['detail']


@pytest.mark.parametrize('group,search,category,role', [
    ('CBC', 'AllSky', 'production', 'observation'),
    ('Test', 'AllSky', 'test', 'test'),
    ('CBC', 'MDC', 'mdc', 'test'),
])
def test_served_voevents_are_valid_voevent_2_0(gracedb, gracedb_url, group,
                                               search, category, role):
    gps = fresh_time()
    event = gracedb.create_event(group, 'gstlal', 'coinc.xml', search=search,
                                 filecontents=coinc_at(gps)).json()
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1, event['graceid'],
                                    category=category).json()[
                                        'superevent_id']
    gracedb.write_log(sid, 'sky map', filename='bayestar.fits.gz',
                      filecontents=b'FITS')
    for voevent_type in ('EW', 'PR', 'IN', 'UP', 'RE'):
        created = gracedb.create_voevent(
            sid, gracedb.voevent_types[voevent_type],
            skymap_filename='bayestar.fits.gz', skymap_type='bayestar',
            ProbHasNS=0.5, ProbHasRemnant=0.25, BNS=0.5, NSBH=0.25, BBH=0.2,
            Terrestrial=0.05).json()
        served = gracedb.files(sid, created['filename']).read()
        # The same bytes under the file's versioned name.
        assert requests.get(created['links']['file']).content == served
        packet = voeventparse.loads(served)
        voeventparse.assert_valid_as_v2_0(packet)
        assert packet.attrib['role'] == role
        assert packet.attrib['ivorn'] == created['ivorn']


# -- errors ------------------------------------------------------------------------

def test_unknown_ids_are_404(gracedb, gracedb_url):
    for call in (lambda: gracedb.event('G999999999'),
                 lambda: gracedb.superevent('S000101zz'),
                 lambda: gracedb.logs('G999999999'),
                 lambda: gracedb.files('S000101zz'),
                 lambda: gracedb.labels('G999999999', 'INJ')):
        with pytest.raises(HTTPError) as info:
            call()
        assert info.value.status_code == 404
    graceid = create_cbc(gracedb)['graceid']
    response = requests.get(f'{gracedb_url}events/{graceid}/files/nope.txt')
    assert response.status_code == 404
    assert 'nope.txt' in response.json()['detail']


@pytest.mark.parametrize('data,files,reason', [
    ({'group': 'Nope', 'pipeline': 'gstlal'}, True, 'unknown group'),
    ({'group': 'CBC', 'pipeline': 'nope'}, True, 'unknown pipeline'),
    ({'group': 'CBC', 'pipeline': 'gstlal', 'search': 'x'}, True,
     'unknown search'),
    ({'group': 'CBC', 'pipeline': 'gstlal', 'labels': 'NOPE'}, True,
     'unknown label'),
    ({'group': 'CBC', 'pipeline': 'gstlal', 'offline': 'maybe'}, True,
     'offline must be true or false'),
    ({'group': 'CBC', 'pipeline': 'gstlal'}, False, 'eventFile is required'),
])
def test_bad_event_fields_are_400(gracedb_url, data, files, reason):
    response = requests.post(
        f'{gracedb_url}events/', data=data,
        files={'eventFile': ('coinc.xml', COINC)} if files else None)
    assert response.status_code == 400
    assert reason in response.json()['detail']


# Hostile and malformed XML: tests/test_xml_safety.py.
@pytest.mark.parametrize('content,reason', [
    (b'{"not": "an event"', 'malformed JSON'),
    (b'\x89PNG\r\n\x1a\n\x00\x00', 'neither XML nor UTF-8'),
    (b'<LIGO_LW></LIGO_LW>', 'neither a coinc_inspiral'),
    (PSD, 'neither a coinc_inspiral'),
    # This one crashes igwn-ligolw's row builder unless it is refused first.
    (b'<LIGO_LW><Table Name="coinc_inspiral:table"><Stream Delimiter="," '
     b'Name="coinc_inspiral:table">1,2</Stream></Table></LIGO_LW>',
     'Stream without Columns'),
])
def test_bad_event_files_are_400_and_server_carries_on(
        gracedb, gracedb_url, content, reason):
    response = requests.post(
        f'{gracedb_url}events/', data={'group': 'CBC', 'pipeline': 'gstlal'},
        files={'eventFile': ('coinc.xml', content)})
    assert response.status_code == 400
    assert reason in response.json()['detail']
    # Still serving, and nothing was stored for the refused upload.
    assert create_cbc(gracedb)['graceid']


def test_bad_superevent_fields_are_400(gracedb_url):
    for data, reason in [
            ({'t_start': 'x', 't_0': 1, 't_end': 2, 'preferred_event': 'G1'},
             't_start must be a number'),
            ({'t_start': 0, 't_0': 1, 't_end': 2}, 'preferred_event is '
             'required'),
            ({'t_start': 0, 't_0': 1, 't_end': 2, 'preferred_event': 'G1',
              'category': 'Z'}, 'unknown category'),
            # Superevent ids need t_0's UTC date.
            ({'t_start': -5, 't_0': -1, 't_end': 2, 'preferred_event': 'G1'},
             't_0: GPS time out of range')]:
        response = requests.post(f'{gracedb_url}superevents/', data=data)
        assert response.status_code == 400
        assert reason in response.json()['detail']


def test_upload_size_limit(start_gracedb):
    server = start_gracedb(extra_args=['--max-upload-size', '100000'])
    from ligo.gracedb.rest import GraceDb
    client = GraceDb(service_url=server.url, force_noauth=True)
    graceid = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                  filecontents=COINC).json()['graceid']
    with pytest.raises(HTTPError) as info:
        client.write_log(graceid, 'big', filename='big.bin',
                         filecontents=b'x' * 200000)
    assert info.value.status_code == 413
    # Nothing of the refused upload is stored; the server carries on.
    assert 'big.bin' not in client.files(graceid).json()
    assert client.write_log(graceid, 'small', filename='small.bin',
                            filecontents=b'x' * 1000).status_code == 201


# -- durability and concurrency -------------------------------------------------

def test_acknowledged_writes_survive_kill_9(start_gracedb, tmp_path):
    from ligo.gracedb.rest import GraceDb
    server = start_gracedb()
    client = GraceDb(service_url=server.url, force_noauth=True)
    graceids = [client.create_event('CBC', 'gstlal', 'coinc.xml',
                                    filecontents=coinc_at(1000000000 + i)
                                    ).json()['graceid'] for i in range(5)]
    client.write_log(graceids[-1], 'psd', filename='psd.xml.gz',
                     filecontents=PSD)
    client.write_label(graceids[-1], 'SKYMAP_READY')
    sid = client.create_superevent(999999999, 1000000000, 1000000001,
                                   graceids[0]).json()['superevent_id']
    server.kill()
    restarted = start_gracedb(database=server.database, port=server.port)
    client = GraceDb(service_url=restarted.url, force_noauth=True)
    assert [client.event(g).json()['graceid'] for g in graceids] == graceids
    assert client.files(graceids[-1], 'psd.xml.gz').read() == PSD
    assert client.event(graceids[-1]).json()['labels'] == ['SKYMAP_READY']
    assert client.superevent(sid).json()['preferred_event'] == graceids[0]
    # Identifiers go on from where they were.
    new = client.create_event('CBC', 'gstlal', 'coinc.xml',
                              filecontents=COINC).json()['graceid']
    assert int(new[1:]) > int(graceids[-1][1:])


def test_concurrent_writes_get_distinct_ids(gracedb_url):
    from ligo.gracedb.rest import GraceDb
    gps = fresh_time()
    results, errors = [], []

    def work(i):
        try:
            client = GraceDb(service_url=gracedb_url, force_noauth=True)
            graceid = client.create_event(
                'CBC', 'gstlal', 'coinc.xml',
                filecontents=coinc_at(gps + 10 * i)).json()['graceid']
            sid = client.create_superevent(
                gps + 10 * i - 1, gps + 10 * i, gps + 10 * i + 1,
                graceid).json()['superevent_id']
            for n in range(3):
                client.write_log(sid, f'log {n}')
            results.append((graceid, sid,
                            len(client.logs(sid).json()['log'])))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r[0] for r in results}) == 12
    sids = sorted(r[1] for r in results)
    date = ids.date_code(gps)
    assert sids == sorted(f'S{date}{ids.letters(n)}' for n in range(1, 13))
    assert all(r[2] == 3 for r in results)


def test_publishing_failure_does_not_fail_requests(start_gracedb):
    from ligo.gracedb.rest import GraceDb
    # Nothing listens on port 9: every publication fails.
    server = start_gracedb(lvalert_url='redis://127.0.0.1:9/0')
    client = GraceDb(service_url=server.url, force_noauth=True)
    response = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                   filecontents=COINC)
    assert response.status_code == 201
    graceid = response.json()['graceid']
    assert client.event(graceid).json()['graceid'] == graceid
    wait_for(lambda: 'Could not publish LVAlert new for ' + graceid
             in server.log(), timeout=10, what='the publishing error log')


# -- web pages ----------------------------------------------------------------------

def test_html_pages(gracedb, gracedb_url):
    root = gracedb_url[:-len('api/')]
    gps = fresh_time()
    event = create_cbc(gracedb, gps, labels=['INJ'])
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    event['graceid']).json()[
                                        'superevent_id']
    gracedb.write_log(sid, '<script>alert(1)</script>',
                      filename='skymap.png', filecontents=PNG)
    page = requests.get(f'{root}superevents/{sid}/view/')
    assert page.status_code == 200 and sid in page.text
    image = f'{gracedb_url}superevents/{sid}/files/skymap.png,0'
    assert f'<img src="{image}"' in page.text
    download = requests.get(image)
    assert download.content == PNG
    assert download.headers['Content-Type'] == 'image/png'
    assert download.headers['Content-Security-Policy'] == 'sandbox'
    assert '<script>alert(1)</script>' not in page.text
    assert '&lt;script&gt;' in page.text
    page = requests.get(f'{root}events/{event["graceid"]}/view/')
    assert page.status_code == 200
    assert 'INJ' in page.text and 'coinc.xml' in page.text
    index = requests.get(root)
    assert sid in index.text and event['graceid'] in index.text
    assert requests.get(f'{root}events/G999999999/view/').status_code == 404


# -- the command and the deployment ---------------------------------------------

def test_command_defaults_and_clean_stop(tmp_path):
    """Without options: loopback, the configured port, an SQLite file in
    the deployment's folder; SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys

    from .conftest import ROOT

    port = free_port()
    env = {**os.environ, 'GWCELERY_STATE_DIR': str(tmp_path / 'state'),
           'GWCELERY_TEST_GRACEDB_URL': f'http://127.0.0.1:{port}/api/'}
    log = tmp_path / 'server.log'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'gwcelery', 'localgracedb',
         '--lvalert-url', 'none'], cwd=ROOT, env=env,
        stdout=open(log, 'w'), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        def serving():
            assert proc.poll() is None, log.read_text()
            try:
                return requests.get(f'http://127.0.0.1:{port}/api/',
                                    timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(serving, timeout=30, what='the local GraceDb')
        assert f'Serving on http://127.0.0.1:{port}' in log.read_text()
        # Links show the configured address, whichever one was used.
        root = requests.get(f'http://localhost:{port}/api/').json()
        assert root['links']['self'] == f'http://127.0.0.1:{port}/api/'
        assert (tmp_path / 'state' / 'localgracedb.sqlite').exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_local_deployment_runs_the_server():
    from gwcelery import deployment
    program, = [p for p in deployment.PROGRAMS if p.name == 'localgracedb']
    assert program.args == ('localgracedb',)
    beat, = [p for p in deployment.PROGRAMS if p.name == 'beat']
    # After Redis (100), before beat and the workers that call it.
    assert 100 < program.priority < beat.priority
    assert all(program.priority < p.priority for p in deployment.PROGRAMS
               if p.name.startswith('worker-'))


def test_hung_lvalert_server_does_not_delay_responses(start_gracedb,
                                                      redis_client):
    import socket
    import time

    from ligo.gracedb.rest import GraceDb

    # Accepts connections, never answers: every publication hangs.
    hung = socket.socket()
    hung.bind(('127.0.0.1', 0))
    hung.listen(16)
    try:
        server = start_gracedb(
            lvalert_url=f'redis://127.0.0.1:{hung.getsockname()[1]}/0')
        client = GraceDb(service_url=server.url, force_noauth=True)
        start = time.monotonic()
        graceids = [client.create_event(
            'CBC', 'gstlal', 'coinc.xml', filecontents=COINC
        ).json()['graceid'] for _ in range(3)]
        assert time.monotonic() - start < 5
        assert client.event(graceids[-1]).json()['graceid'] == graceids[-1]
    finally:
        hung.close()


def test_public_url_is_used_in_links_and_alerts(start_gracedb, redis_url,
                                                redis_client):
    from ligo.gracedb.rest import GraceDb

    port = free_port()
    public = f'http://localhost:{port}/api/'
    server = start_gracedb(port=port, lvalert_url=redis_url,
                           extra_args=['--public-url', public])
    # Reached through another name for the same machine.
    client = GraceDb(service_url=server.url, force_noauth=True)
    assert client.links['self'] == public
    event = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                filecontents=COINC).json()
    assert event['links']['self'] == f'{public}events/{event["graceid"]}'
    found = wait_for(lambda: [
        a for a in alerts(redis_client, 'cbc_gstlal')
        if a['object']['links']['self'].startswith(public)],
        timeout=10, what='the alert with the public address')
    assert [a['uid'] for a in found] == [event['graceid']]
