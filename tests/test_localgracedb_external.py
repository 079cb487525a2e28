"""External events in the local GraceDb: what it reads from GCN notices,
how queries find them, their page, and their place in superevents."""
import pytest
import requests
from ligo.gracedb.exceptions import HTTPError

from .fixtures.exttrig import edit_notice, new_trigger_id
from .fixtures.superevents import coinc_xml, fresh_time


def create(gracedb, notice, pipeline='Fermi', search='GRB',
           group='External'):
    return gracedb.create_event(group, pipeline, 'initial.data',
                                search=search, filecontents=notice).json()


def test_grb_attributes_from_the_notice(gracedb):
    trigger_id = new_trigger_id()
    event = create(gracedb, edit_notice('fermi_grb_gcn.xml',
                                        trigger_id=trigger_id))
    assert event['gpstime'] == pytest.approx(1211191124.31)
    grb = event['extra_attributes']['GRB']
    assert grb == {
        'ivorn': grb['ivorn'],
        'author_ivorn': 'ivo://nasa.gsfc.tan/gcn',
        'author_shortname': 'Fermi (via VO-GCN)',
        'observatory_location_id': 'GEOLUN',
        'coord_system': 'UTC-FK5-GEO',
        'ra': 140.05, 'dec': -39.0499, 'error_radius': 5.6,
        'how_description': 'Fermi Satellite, GBM Instrument',
        'how_reference_url': 'http://gcn.gsfc.nasa.gov/fermi.html',
        'trigger_duration': None,
        'trigger_id': trigger_id,
        'T90': None, 'designation': None, 'redshift': None}
    assert grb['ivorn'].startswith('ivo://nasa.gsfc.gcn/Fermi#')


def test_sub_threshold_notice_has_trans_num_and_duration(gracedb):
    trigger_id = new_trigger_id()
    event = create(gracedb, edit_notice('fermi_subthresh_grb_gcn.xml',
                                        trigger_id=trigger_id),
                   search='SubGRB')
    grb = event['extra_attributes']['GRB']
    assert grb['trigger_id'] == trigger_id
    assert grb['trigger_duration'] == 0.703


def test_queries_by_trigger_id_pipeline_search_and_time(gracedb):
    t = fresh_time()
    ids = [new_trigger_id() for _ in range(3)]
    fermi = create(gracedb, edit_notice('fermi_grb_gcn.xml',
                                        trigger_id=ids[0], gpstime=t))
    sub = create(gracedb, edit_notice('fermi_subthresh_grb_gcn.xml',
                                      trigger_id=ids[1], gpstime=t + 10),
                 search='SubGRB')
    swift = create(gracedb, edit_notice('swift_grb_gcn.xml',
                                        trigger_id=ids[2], gpstime=t + 20),
                   pipeline='Swift')

    def found(query):
        return sorted(e['graceid'] for e in gracedb.events(query))

    assert found(f'group: External pipeline: Fermi grbevent.trigger_id = '
                 f'"{ids[0]}"') == [fermi['graceid']]
    assert found(f'pipeline: Swift grbevent.trigger_id = "{ids[0]}"') == []
    assert found(f'trigger_id: {ids[1]}') == [sub['graceid']]
    window = f'{t - 1} .. {t + 21}'
    assert found(f'External {window}') == sorted(
        [fermi['graceid'], sub['graceid'], swift['graceid']])
    assert found(f'External search: SubGRB {window}') == [sub['graceid']]
    assert found(f'External pipeline: Fermi gpstime: {t + 5} .. {t + 21}') \
        == [sub['graceid']]
    assert found(f'Swift {window}') == [swift['graceid']]


def test_page_shows_the_sky_position(gracedb, gracedb_url):
    event = create(gracedb, edit_notice(
        'swift_grb_gcn.xml', trigger_id=new_trigger_id(),
        position=(12.5, -45.25, 0.05)), pipeline='Swift')
    page = requests.get(gracedb_url.replace(
        'api/', f'events/{event["graceid"]}/view/'), timeout=10).text
    assert '12.5, -45.25 ± 0.05' in page
    assert event['extra_attributes']['GRB']['trigger_id'] in page


def test_a_test_event_from_a_notice_is_replaced_and_an_em_event(gracedb):
    trigger_id = new_trigger_id()
    t = fresh_time()
    drill = create(gracedb, edit_notice('snews_gcn.xml', role='test',
                                        trigger_id=trigger_id, gpstime=t),
                   pipeline='SNEWS', search='Supernova', group='Test')
    assert drill['graceid'].startswith('T')
    later = edit_notice('snews_gcn.xml', role='test', trigger_id=trigger_id,
                        gpstime=t + 1)
    gracedb.replace_event(drill['graceid'], 'initial.data',
                          filecontents=later)
    assert gracedb.event(drill['graceid']).json()['gpstime'] == \
        pytest.approx(t + 1)
    # A Test CBC event's file cannot be swapped for a notice.
    cbc = gracedb.create_event('Test', 'gstlal', 'coinc.xml',
                               filecontents=coinc_xml(t)).json()
    with pytest.raises(HTTPError) as info:
        gracedb.replace_event(cbc['graceid'], 'initial.data',
                              filecontents=later)
    assert info.value.status_code == 400
    # In a test superevent, the drill is an em_event.
    sid = gracedb.create_superevent(t - 1, t, t + 1, cbc['graceid'],
                                    category='test').json()['superevent_id']
    gracedb.add_event_to_superevent(sid, drill['graceid'])
    superevent = gracedb.superevent(sid).json()
    assert superevent['em_events'] == [drill['graceid']]
    assert superevent['gw_events'] == [cbc['graceid']]
