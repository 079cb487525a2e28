"""Pure logic of the local GraceDb: reading event files, identifiers, the
query language and VOEvent XML (no server needed)."""
import datetime
import gzip
import itertools
import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
import voeventparse
from lxml import etree
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gwcelery.data import first2years
from gwcelery.localgracedb import ids, ligolw, query, voevent
from gwcelery.localgracedb.eventfiles import MAX_XML_BYTES, read_event_file
from gwcelery.localgracedb.models import Base, Event, Label, Superevent

DATA = Path(__file__).parent / 'data'
COINC = (DATA / 'gracedb' / 'coinc.xml').read_bytes()
PSD = (DATA / 'gracedb' / 'psd.xml.gz').read_bytes()


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


BANK = {event['name']: event for event in first2years.events()}


@pytest.mark.filterwarnings('ignore:_add_newdoc_ufunc:DeprecationWarning')
@pytest.mark.parametrize('document', [COINC] + [
    first2years.read(event['coinc']) for event in BANK.values()])
def test_tables_read_as_igwn_ligolw_lsctables_reads_them(document):
    # ligo.skymap's reader: lsctables' schema, ilwd:char ids (the older
    # sample's) made integers.
    from igwn_ligolw import lsctables
    from igwn_ligolw.utils import load_fileobj
    from ligo.skymap.io.events.ligolw import ContentHandler
    tree = load_fileobj(BytesIO(document), contenthandler=ContentHandler)
    ours = ligolw.read_tables(document, MAX_XML_BYTES)
    for name in ('coinc_inspiral', 'sngl_inspiral', 'coinc_event',
                 'process_params'):
        rows = lsctables.TableByName[name].get_table(tree)
        assert len(rows) == len(ours[name]) > 0
        for row, mine in zip(rows, ours[name]):
            assert {k: v for k, v in mine.items() if not k.endswith('_id')} \
                == {k: getattr(row, k) for k in mine if not k.endswith('_id')}


@pytest.mark.parametrize('name', BANK)
def test_bank_events_read_as_the_bank_lists_them(name):
    entry = BANK[name]
    event = read_event_file(first2years.read(entry['coinc']))
    assert event['gpstime'] == pytest.approx(entry['gpstime'], abs=1e-6)
    assert event['far'] == entry['far']
    assert event['instruments'] == ','.join(entry['instruments'])
    coinc = event['extra_attributes']['CoincInspiral']
    assert coinc['snr'] == pytest.approx(entry['network_snr'])
    assert coinc['mchirp'] == pytest.approx(entry['mchirp'])
    assert {s['ifo']: s['snr'] for s in event['extra_attributes'][
        'SingleInspiral']} == pytest.approx(entry['snr'])


def test_only_the_requested_tables_are_read():
    assert set(ligolw.read_tables(COINC, MAX_XML_BYTES,
                                  {'coinc_inspiral'})) == {'coinc_inspiral'}
    assert {'process_params', 'sngl_inspiral', 'time_slide'} <= \
        set(ligolw.read_tables(COINC, MAX_XML_BYTES))


def test_psd_xml_gz_is_read_but_makes_no_event():
    # Its PSDs are LIGO_LW arrays, skipped without being built.
    assert ligolw.read_tables(gzip.decompress(PSD), MAX_XML_BYTES) == {}
    with pytest.raises(ValueError, match='neither a coinc_inspiral nor a '
                                         'multi_burst table'):
        read_event_file(PSD)


def test_multi_burst_table_fills_burst_fields():
    event = read_event_file(b'''<?xml version="1.0"?><LIGO_LW>
      <Table Name="multi_burst:table">
      <Column Type="lstring" Name="multi_burst:ifos"/>
      <Column Type="int_4s" Name="multi_burst:peak_time"/>
      <Column Type="int_4s" Name="multi_burst:peak_time_ns"/>
      <Column Type="real_8" Name="multi_burst:false_alarm_rate"/>
      <Column Type="real_4" Name="multi_burst:duration"/>
      <Column Type="ilwd:char" Name="multi_burst:coinc_event_id"/>
      <Stream Name="multi_burst:table" Delimiter=",">
        "H1,L1",1000000000,500000000,1e-08,0.25,"coinc_event:coinc_event_id:7"
      </Stream></Table></LIGO_LW>''')
    assert event['gpstime'] == 1000000000.5 and event['far'] == 1e-8
    assert event['instruments'] == 'H1,L1'
    assert event['extra_attributes'] == {'MultiBurst': {
        'ifos': 'H1,L1', 'peak_time': 1000000000,
        'peak_time_ns': 500000000, 'false_alarm_rate': 1e-8,
        'duration': 0.25}}


def _table(stream, columns='<Column Type="int_4s" Name="t:a"/>'):
    return (b'<LIGO_LW><Table Name="coinc_inspiral:table">'
            + columns.replace('t:', 'coinc_inspiral:').encode()
            + b'<Stream Delimiter="," Name="coinc_inspiral:table">'
            + stream + b'</Stream></Table></LIGO_LW>')


@pytest.mark.parametrize('document,reason', [
    (_table(b'"abc', '<Column Type="lstring" Name="t:a"/>'),
     'unterminated string'),
    (_table(b'x'), "invalid literal"),
    (_table(b'1', '<Column Type="integer" Name="t:a"/>'),
     "unrecognized Type 'integer'"),
    (_table(b'1,1', '<Column Type="int_4s" Name="t:a"/>' * 2),
     "duplicate Column 'a'"),
    (_table(b'1,<b/>2'), 'unknown element b'),
    (_table(b'1 2'), 'expected whitespace or delimiter'),
    (gzip.compress(b'<html><LIGO_LW/></html>'),
     "not a LIGO_LW document \\(root element 'html'\\)"),
])
def test_malformed_ligolw_is_refused_with_a_reason(document, reason):
    with pytest.raises(ValueError, match=reason):
        read_event_file(document)


def test_stream_without_columns_is_refused_and_does_not_crash():
    # igwn-ligolw's row builder dies of a segmentation fault on such a
    # table, so this runs in a process of its own.
    code = (
        'from gwcelery.localgracedb.eventfiles import read_event_file\n'
        'try:\n'
        f'    read_event_file({_table(b"1,2", "")!r})\n'
        'except ValueError as e:\n'
        '    print(e)\n')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'Stream without Columns' in result.stdout


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


_PROBABILITIES = {'ProbHasNS': 0.9, 'ProbHasRemnant': 0.1, 'HasMassGap': 0.0,
                  'BNS': 0.9, 'NSBH': 0.05, 'BBH': 0.0, 'Terrestrial': 0.05}


def _build(voevent_type, category='P', t_0=1187008882.4, **options):
    return voevent.build_voevent(
        {'superevent_id': 'S170817a', 'category': category, 't_0': t_0},
        {'group': 'CBC', 'pipeline': 'gstlal', 'search': 'AllSky',
         'far': 3.5e-12, 'instruments': 'H1,L1,V1'},
        3, voevent_type, {**_PROBABILITIES, 'skymap_type': 'bayestar',
                          **options},
        'http://x/api/superevents/S170817a/files/bayestar.fits.gz',
        'http://x/superevents/S170817a/view/',
        ['ivo://gwnet/LVC#S170817a-1-Preliminary',
         'ivo://gwnet/LVC#S170817a-2-Initial'])


@pytest.mark.parametrize('voevent_type,category', list(itertools.product(
    voevent.VOEVENT_TYPES, ('P', 'T', 'M'))))
def test_every_voevent_is_valid_voevent_2_0(voevent_type, category):
    ivorn, xml = _build(voevent_type, category)
    packet = voeventparse.loads(xml)
    voeventparse.assert_valid_as_v2_0(packet)
    assert packet.attrib['ivorn'] == ivorn
    assert packet.attrib['role'] == ('observation' if category == 'P'
                                     else 'test')
    params = _params(etree.fromstring(xml))
    assert params['Packet_Type'] == str(voevent.PACKET_TYPES[voevent_type])
    assert params['Pkt_Ser_Num'] == '3'
    if voevent_type == 'RE':
        assert 'BNS' not in params and 'skymap_fits' not in params
    else:
        assert {name: float(params[name]) for name in (
            'HasNS', 'HasRemnant', 'HasMassGap', 'BNS', 'NSBH', 'BBH',
            'Terrestrial')} == {
                'HasNS': 0.9, 'HasRemnant': 0.1, 'HasMassGap': 0.0,
                'BNS': 0.9, 'NSBH': 0.05, 'BBH': 0.0, 'Terrestrial': 0.05}


def _outline(element, path=''):
    """Paths of the structural elements (not Params, Groups or texts)."""
    for child in element:
        if isinstance(child.tag, str) and child.tag not in (
                'Param', 'Group', 'Description'):
            yield path + child.tag
            yield from _outline(child, path + child.tag + '/')


def test_voevent_has_the_structure_of_graceDb_notices():
    sample = etree.parse(DATA / 'gcn' / 'G298048-1-Initial.xml').getroot()
    ours = etree.fromstring(_build('IN')[1])
    assert list(_outline(ours)) == list(_outline(sample))
    assert [c.tag for c in ours] == [c.tag for c in sample] == [
        'Who', 'What', 'WhereWhen', 'How', 'Description']
    assert [c.tag for c in ours.find('Who')] == \
        [c.tag for c in sample.find('Who')] == ['Date', 'Author']
    assert [c.tag for c in ours.find('What')].count('Param') > 10
    mine = {p.get('name'): p for p in ours.find('What').iter('Param')}
    theirs = {p.get('name'): p for p in sample.find('What').iter('Param')}
    shared = {'internal', 'Packet_Type', 'Pkt_Ser_Num', 'GraceID',
              'AlertType', 'HardwareInj', 'OpenAlert', 'EventPage',
              'Instruments', 'FAR', 'Group', 'Pipeline', 'Search'}
    assert shared <= set(mine) & set(theirs)
    for name in shared:
        assert mine[name].get('dataType') == theirs[name].get('dataType')
        assert mine[name].get('ucd') == theirs[name].get('ucd')
    assert ours.find('What/Group[@type="GW_SKYMAP"]') is not None
    assert sample.find('What/Group[@type="GW_SKYMAP"]') is not None


def test_voevent_time_of_writing_is_utc_without_a_zone():
    summer = datetime.timezone(datetime.timedelta(hours=2))
    for now in (datetime.datetime(2019, 4, 25, 10, 18, 5, tzinfo=summer),
                datetime.datetime(2019, 4, 25, 8, 18, 5, 999)):
        ivorn, xml = voevent.build_voevent(
            {'superevent_id': 'S1', 'category': 'P', 't_0': 1e9}, {}, 1,
            'RE', {}, None, 'http://x', now=now)
        assert etree.fromstring(xml).findtext('Who/Date') == \
            '2019-04-25T08:18:05'


def test_update_supersedes_every_earlier_notice():
    root = etree.fromstring(_build('UP')[1])
    assert [(c.get('cite'), c.text) for c in root.iter('EventIVORN')] == [
        ('supersedes', 'ivo://gwnet/LVC#S170817a-1-Preliminary'),
        ('supersedes', 'ivo://gwnet/LVC#S170817a-2-Initial')]


def test_voevent_during_a_leap_second():
    ivorn, xml = _build('PR', t_0=1167264017.5)
    assert etree.fromstring(xml).findtext('.//ISOTime') == \
        '2016-12-31T23:59:60.500000Z'
    assert voeventparse.valid_as_v2_0(voeventparse.loads(xml))
