"""Pure logic of the local GraceDb: reading event files, identifiers, the
query language and VOEvent XML (no server needed)."""
import gzip
import json
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gwcelery.localgracedb import ids, ligolw, query, voevent
from gwcelery.localgracedb.eventfiles import (MAX_XML_BYTES, read_event_file,
                                              utc_to_gps)
from gwcelery.localgracedb.models import Base, Event, Label, Superevent

DATA = Path(__file__).parent / 'data'
COINC = (DATA / 'gracedb' / 'coinc.xml').read_bytes()


def test_coinc_xml_fills_cbc_fields():
    event = read_event_file(COINC)
    # coinc_inspiral: end_time 1186436412, end_time_ns 173834723.
    assert event['gpstime'] == pytest.approx(1186436412.173834723)
    assert event['far'] == pytest.approx(5.176954877338635e-16)
    assert event['instruments'] == 'H1,L1,V1'
    assert event['nevents'] == 3
    coinc = event['extra_attributes']['CoincInspiral']
    assert coinc['snr'] == pytest.approx(15.61787480055296)
    assert coinc['mchirp'] == pytest.approx(1.146415114402771)
    singles = event['extra_attributes']['SingleInspiral']
    assert sorted(s['ifo'] for s in singles) == ['H1', 'L1', 'V1']
    assert all('mass1' in s and 'snr' in s and 'event_id' not in s
               for s in singles)


def test_gzipped_coinc_xml_is_read_the_same():
    assert read_event_file(gzip.compress(COINC)) == read_event_file(COINC)
    with pytest.raises(ValueError, match='cut short'):
        read_event_file(gzip.compress(COINC)[:-100])
    with pytest.raises(ValueError, match='bad gzip data'):
        read_event_file(b'\x1f\x8b not gzip at all')


def test_ligolw_quoted_strings_and_empty_values():
    doc = b'''<?xml version="1.0"?><LIGO_LW><Table Name="t:table">
      <Column Type="lstring" Name="t:s"/><Column Type="real_8" Name="t:x"/>
      <Column Type="int_4s" Name="t:n"/>
      <Stream Delimiter="," Type="Local" Name="t:table">
        "a, \\"b\\"",1.5,,
        "",,7
      </Stream></Table></LIGO_LW>'''
    assert ligolw.read_tables(doc, MAX_XML_BYTES) == {'t': [
        {'s': 'a, "b"', 'x': 1.5, 'n': None},
        {'s': '', 'x': None, 'n': 7}]}


def test_ligolw_wrong_number_of_values_is_an_error():
    doc = b'''<LIGO_LW><Table Name="t:table"><Column Type="int_4s"
      Name="t:a"/><Column Type="int_4s" Name="t:b"/><Stream Delimiter=","
      Name="t:table">1,2,3</Stream></Table></LIGO_LW>'''
    with pytest.raises(ValueError, match='3 values for 2 columns'):
        ligolw.read_tables(doc, MAX_XML_BYTES)


def test_cwb_trigger_file():
    event = read_event_file(
        b'time: 1000000000.25 1000000000.26\nifo: H1 L1\n'
        b'duration: 0.05\nfrequency: 150\nfar: 2e-9\n')
    assert event['gpstime'] == 1000000000.25
    assert event['far'] == 2e-9
    assert event['instruments'] == 'H1,L1'
    burst = event['extra_attributes']['MultiBurst']
    assert burst['duration'] == 0.05 and burst['central_freq'] == 150


def test_cwb_without_time_is_rejected():
    with pytest.raises(ValueError, match='time'):
        read_event_file(b'ifo: H1 L1\nfar: 1e-9\n')


def test_olib_json():
    event = read_event_file(json.dumps({
        'gpstime': 1e9, 'FAR': 3e-8, 'quality': 12.5,
        'frequency': 220.0}).encode())
    assert event['gpstime'] == 1e9 and event['far'] == 3e-8
    lib = event['extra_attributes']['LalInferenceBurst']
    assert lib['quality_mean'] == 12.5 and lib['frequency_mean'] == 220.0


@pytest.mark.parametrize('name,trigger,ra,dec,error', [
    ('fermi_grb_gcn.xml', '548848711', 140.05, -39.0499, 5.6),
    ('swift_grb_gcn.xml', '1123129', 268.87, -20.3153, 0.05),
    ('snews_gcn.xml', '1000194', 0.0, 0.0, 360.0),
])
def test_gcn_voevent_makes_external_event(name, trigger, ra, dec, error):
    event = read_event_file((DATA / 'gcn' / name).read_bytes())
    grb = event['extra_attributes']['GRB']
    assert grb['trigger_id'] == trigger
    assert (grb['ra'], grb['dec'], grb['error_radius']) == (ra, dec, error)
    assert grb['ivorn'].startswith('ivo://nasa.gsfc.gcn/')


def test_gcn_time_becomes_gps_with_leap_seconds():
    event = read_event_file((DATA / 'gcn' / 'snews_gcn.xml').read_bytes())
    # 2018-09-18T16:00:01 UTC; GPS − UTC was 18 s then.
    assert event['gpstime'] == pytest.approx(1221321619.0)


@pytest.mark.parametrize('gps,utc', [
    (1187008882.4, '2017-08-17 12:41:04.400000'),   # GW170817
    (1238303737.0, '2019-04-03 05:15:19'),
    (1167264016.5, "2016-12-31 23:59:59.500000"),    # before a leap second
    (1167264018.0, '2017-01-01 00:00:00'),
    (630720013.0, '2000-01-01 00:00:00'),
])
def test_gps_to_utc(gps, utc):
    assert str(ids.gps_to_utc(gps)) == utc
    assert utc_to_gps(ids.gps_to_utc(gps)) == pytest.approx(gps)


def test_superevent_letters():
    assert [ids.letters(n) for n in (1, 2, 26, 27, 28, 52, 53, 702, 703)] \
        == ['a', 'b', 'z', 'aa', 'ab', 'az', 'ba', 'zz', 'aaa']


def test_event_prefixes():
    assert ids.event_prefix('CBC', 'AllSky') == 'G'
    assert ids.event_prefix('Burst', None) == 'G'
    assert ids.event_prefix('External', 'GRB') == 'E'
    assert ids.event_prefix('Test', 'AllSky') == 'T'
    assert ids.event_prefix('CBC', 'MDC') == 'M'


# Hostile, malformed and oversized XML: tests/test_xml_safety.py.
def test_unknown_event_file_is_refused():
    with pytest.raises(ValueError):
        read_event_file(b'<html><body>hello</body></html>')
    with pytest.raises(ValueError):
        read_event_file(b'\xff\xfe\x00binary')


# -- query language, run against a real (in-memory SQLite) database ----------

@pytest.fixture
def session():
    engine = create_engine('sqlite://')
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for i, (group, pipeline, search, gps, far) in enumerate([
                ('CBC', 'gstlal', 'AllSky', 1000.0, 1e-10),
                ('CBC', 'pycbc', 'AllSky', 1010.0, 1e-5),
                ('Burst', 'CWB', 'AllSky', 2000.0, 1e-8),
                ('External', 'Fermi', 'GRB', 1005.0, None)], start=1):
            session.add(Event(graceid=f'G{i}', group=group,
                              pipeline=pipeline, search=search,
                              gpstime=gps, far=far))
        session.add(Label(object_id='G1', name='INJ'))
        for i, (category, t0) in enumerate([('P', 1000.0), ('T', 1500.0),
                                            ('P', 3000.0)], start=1):
            session.add(Superevent(
                superevent_id=f'S{i}', category=category, date='000101',
                sequence=i, t_start=t0 - 1, t_0=t0, t_end=t0 + 1,
                preferred_event='G1'))
        session.add(Label(object_id='S3', name='EM_READY'))
        session.commit()
        yield session


KNOWN = {'groups': ['CBC', 'Burst', 'External', 'Test'],
         'pipelines': ['gstlal', 'pycbc', 'CWB', 'Fermi'],
         'searches': ['AllSky', 'GRB']}


def _events(session, text):
    return [e.graceid for e in session.scalars(
        select(Event).where(query.event_conditions(text, KNOWN))
        .order_by(Event.id))]


def _superevents(session, text):
    return [s.superevent_id for s in session.scalars(
        select(Superevent).where(query.superevent_conditions(text))
        .order_by(Superevent.id))]


@pytest.mark.parametrize('text,expected', [
    ('', ['G1', 'G2', 'G3', 'G4']),
    ('gpstime: 999 .. 1006', ['G1', 'G4']),
    ('999 .. 1006', ['G1', 'G4']),
    ('gpstime:999..1006', ['G1', 'G4']),
    ('far < 1e-7', ['G1', 'G3']),
    ('far >= 1e-8', ['G2', 'G3']),
    ('group: CBC', ['G1', 'G2']),
    ('CBC far < 1e-7', ['G1']),
    ('cbc', ['G1', 'G2']),
    ('pipeline: "pycbc"', ['G2']),
    ('Fermi', ['G4']),
    ('GRB', ['G4']),
    ('label: INJ', ['G1']),
    ('INJ', ['G1']),
    ('~INJ CBC', ['G2']),
    ('-INJ', ['G2', 'G3', 'G4']),
    ('graceid: G3', ['G3']),
    ('CBC AND 900 .. 1005', ['G1']),
])
def test_event_queries(session, text, expected):
    assert _events(session, text) == expected


@pytest.mark.parametrize('text,expected', [
    ('', ['S1', 'S2', 'S3']),
    ('category: Production', ['S1', 'S3']),
    ('category: test', ['S2']),
    ('Production 900 .. 2000', ['S1']),
    ('t_0: 1400 .. 3500', ['S2', 'S3']),
    ('t_start > 1000', ['S2', 'S3']),
    ('EM_READY', ['S3']),
    ('~EM_READY production', ['S1']),
    ('is_gw: false', ['S1', 'S2', 'S3']),
])
def test_superevent_queries(session, text, expected):
    assert _superevents(session, text) == expected


@pytest.mark.parametrize('text', [
    'colour: blue', 'gpstime: 1 .. x', 'group < 4', '"unbalanced',
    'category: nonsense', '$$$'])
def test_bad_queries_raise(session, text):
    with pytest.raises(query.QueryError):
        if text.startswith('category'):
            _superevents(session, text)
        else:
            _events(session, text)


# -- VOEvent XML ---------------------------------------------------------------

def _params(root):
    return {p.get('name'): p.get('value') for p in root.iter('Param')}


def test_preliminary_voevent_has_the_lvc_parameters():
    ivorn, xml = voevent.build_voevent(
        {'superevent_id': 'S170817a', 'category': 'P', 't_0': 1187008882.4},
        {'group': 'CBC', 'pipeline': 'gstlal', 'search': 'AllSky',
         'far': 3.5e-12, 'instruments': 'H1,L1,V1'},
        1, 'PR', {'internal': False, 'ProbHasNS': 0.9, 'BNS': 0.95,
                  'Terrestrial': 0.05, 'skymap_type': 'bayestar'},
        'http://x/api/superevents/S170817a/files/bayestar.fits.gz',
        'http://x/superevents/S170817a/view/')
    assert ivorn == 'ivo://gwnet/LVC#S170817a-1-Preliminary'
    root = etree.fromstring(xml)
    assert root.tag == '{http://www.ivoa.net/xml/VOEvent/v2.0}VOEvent'
    assert root.get('role') == 'observation' and root.get('ivorn') == ivorn
    params = _params(root)
    assert params['Packet_Type'] == '150'
    assert params['GraceID'] == 'S170817a'
    assert params['AlertType'] == 'Preliminary'
    assert float(params['FAR']) == 3.5e-12
    assert params['Instruments'] == 'H1,L1,V1'
    assert params['Pipeline'] == 'gstlal' and params['Group'] == 'CBC'
    assert params['skymap_fits'].endswith('/bayestar.fits.gz')
    assert float(params['HasNS']) == 0.9 and float(params['BNS']) == 0.95
    assert root.findtext('.//ISOTime') == '2017-08-17T12:41:04.400000Z'


def test_retraction_cites_earlier_notices_and_test_role():
    earlier = ['ivo://gwnet/LVC#TS1-1-Preliminary']
    ivorn, xml = voevent.build_voevent(
        {'superevent_id': 'TS1', 'category': 'T', 't_0': 1e9},
        {'group': 'CBC', 'pipeline': 'gstlal', 'far': 1e-9}, 2, 'RE', {},
        None, 'http://x', earlier)
    root = etree.fromstring(xml)
    assert root.get('role') == 'test'
    params = _params(root)
    assert params['Packet_Type'] == '164'
    assert 'FAR' not in params and 'Pipeline' not in params
    cited = root.find('Citations/EventIVORN')
    assert cited.text == earlier[0] and cited.get('cite') == 'retraction'
