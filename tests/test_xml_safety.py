"""Hostile and broken XML against every entry point that reads XML from
outside: :mod:`gwcelery.util.xml` itself, the VTP packet parser, the
broadcaster (what it sends, what its subscribers send), the local feed's
check, the GCN registry, the GCN listener (a real worker fed by a real VTP
peer) and the local GraceDb's event uploads (real HTTP through the real
ligo-gracedb client). The cases are in tests/fixtures/hostile_xml.py."""
import asyncio
import gzip
import io
import logging
import re
from xml import sax

import pytest
from ligo.gracedb.exceptions import HTTPError

from gwcelery import app
from gwcelery.localgracedb.eventfiles import MAX_XML_BYTES
from gwcelery.tasks import gcn
from gwcelery.util import xml
from gwcelery.util.waiting import wait_for
from gwcelery.vtp import feed
from gwcelery.vtp.framing import frame
from gwcelery.vtp.parsing import MAX_PACKET_SIZE, parse_packet
from gwcelery.vtp.server import Broadcaster

from .fixtures.gcn import HostileServer, sha256
from .fixtures.hostile_xml import CASES, ROOTS, document
from .test_localgracedb import COINC, create_cbc


#: A size limit for the module's own tests, chosen as a caller would.
LIMIT = 10_000


def _broadcast(payload):
    return asyncio.run(Broadcaster('127.0.0.1:0').broadcast(payload))


#: Entry points that raise: name → (call, size limit it applies).
READERS = {
    'util.xml.parse': (lambda data: xml.parse(data, LIMIT), LIMIT),
    'util.xml.ensure_safe': (lambda data: xml.ensure_safe(data, LIMIT),
                             LIMIT),
    'vtp.parsing.parse_packet': (parse_packet, MAX_PACKET_SIZE),
    'vtp.feed.check_notice': (
        lambda data: feed.check_notice(data, MAX_PACKET_SIZE),
        MAX_PACKET_SIZE),
    'Broadcaster.broadcast': (_broadcast, MAX_PACKET_SIZE),
}


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('reader', READERS)
def test_readers_refuse(reader, case, http_trap):
    read, limit = READERS[reader]
    build, expected = CASES[case]
    with pytest.raises(xml.XMLError, match=re.escape(expected)):
        read(build('voevent', limit, http_trap.url))


@pytest.mark.parametrize('case', CASES)
def test_gcn_registry_logs_and_drops(case, caplog, http_trap):
    build, expected = CASES[case]
    payload = build('voevent', app.conf.vtp_max_packet_size, http_trap.url)
    assert gcn.handler.dispatch(payload) is None
    assert 'Dropping a payload that could not be decoded' in caplog.text
    assert expected in caplog.text


def test_the_network_cases_are_live(http_trap):
    """Without the policy, the cases that name the trap do reach it: here
    with Python's SAX parser reading external entities, as a permissive
    LIGO_LW reader might (the libxml2 here has no HTTP client at all)."""
    for name in ('external entity http://', 'parameter entity',
                 'undeclared entity'):
        parser = sax.make_parser()
        parser.setFeature(sax.handler.feature_external_ges, True)
        parser.setContentHandler(sax.handler.ContentHandler())
        try:
            parser.parse(io.BytesIO(CASES[name][0]('voevent', LIMIT,
                                                   http_trap.url)))
        except sax.SAXException:
            pass  # the trap's answer is no well-formed entity everywhere
    assert sorted(http_trap.requests) == [
        '/external.dtd', '/parameter.dtd', '/xxe']
    http_trap.requests.clear()


def test_what_is_accepted(http_trap):
    # A bare DOCTYPE naming an external DTD, as LIGO_LW files carry: fine,
    # and the DTD is not fetched (http_trap checks).
    doctype = b'<!DOCTYPE LIGO_LW SYSTEM "%sligolw_dtd.txt">' % (
        http_trap.url.encode())
    ligolw = document('ligolw', doctype, b'<Table Name="t:table"/>')
    assert xml.parse(ligolw, LIMIT).find('Table').get('Name') == 't:table'
    assert xml.ensure_safe(ligolw, LIMIT) is None
    # Predefined entities and character references are plain text.
    assert xml.parse(b'<a x="&lt;">&amp;&#65;&#x42;</a>', LIMIT).text == '&AB'
    # Text is parsed as its UTF-8 encoding, and counted so.
    assert xml.parse('<a>\N{GREEK SMALL LETTER MU}</a>', 9).text == '\u03bc'
    with pytest.raises(xml.XMLError, match='9 bytes is over the limit of 8'):
        xml.parse('<a>\N{GREEK SMALL LETTER MU}</a>', 8)
    # Exactly at the limit is accepted.
    notice = document('voevent')
    assert xml.parse(notice, len(notice)) is not None
    # Documents in single-byte encodings other than Latin-1 too.
    assert xml.parse('<?xml version="1.0" encoding="windows-1252"?>'
                     '<a>\u20ac</a>'.encode('cp1252'), LIMIT).text == '\u20ac'
    with pytest.raises(TypeError):
        xml.parse(12, LIMIT)


def test_voevent_ivorn():
    voevent_2 = xml.parse(document('voevent'), LIMIT)
    assert xml.voevent_ivorn(voevent_2) == 'ivo://tests#hostile'
    voevent_1 = xml.parse(
        b'<VOEvent xmlns="http://www.ivoa.net/xml/VOEvent/v1.1" '
        b'ivorn="ivo://old#1" role="test"/>', LIMIT)
    assert xml.voevent_ivorn(voevent_1) == 'ivo://old#1'
    for data, message in [
            (b'<LIGO_LW/>', 'not a VOEvent (root element LIGO_LW)'),
            (b'<VOEvent ivorn="ivo://x"/>', 'not a VOEvent'),
            (document('voevent').replace(b'ivorn="ivo://tests#hostile"',
                                         b''), 'has no ivorn'),
            (document('voevent').replace(b'ivo://tests#hostile', b' '),
             'has no ivorn')]:
        with pytest.raises(xml.XMLError, match=re.escape(message)):
            xml.voevent_ivorn(xml.parse(data, LIMIT))


def test_packets_are_transport_messages_or_voevents():
    assert parse_packet(document('voevent')).get('role') == 'test'
    for data in (b'<LIGO_LW/>', document('voevent').replace(
            b'ivorn="ivo://tests#hostile"', b'')):
        with pytest.raises(xml.XMLError, match='neither a Transport message '
                           'nor a VOEvent with an ivorn'):
            parse_packet(data)


async def _until(condition, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, 'timed out'
        await asyncio.sleep(0.02)


def test_broadcaster_ignores_hostile_packets_from_subscribers(
        caplog, http_trap):
    caplog.set_level(logging.INFO, logger='gwcelery.vtp')
    cases = {name: case for name, case in CASES.items()
             if name != 'over the size limit'}  # a framing error, below

    async def exchange():
        server = Broadcaster('127.0.0.1:0', iamalive_interval=60)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection(*server.address)
            await _until(lambda: server.peers)
            (peer,) = server.peers.values()
            for build, _ in cases.values():
                writer.write(frame(build('voevent', server.max_packet_size,
                                         http_trap.url)))
            await _until(lambda: peer.malformed == len(cases))
            # Still subscribed, and still answered.
            writer.write(frame(document('voevent')))
            await _until(lambda: 'subscribers do not publish' in caplog.text)
            assert list(server.peers) == [peer.name]
            writer.write(frame(CASES['over the size limit'][0](
                'voevent', server.max_packet_size, http_trap.url)))
            await _until(lambda: not server.peers)
            writer.close()
        finally:
            await server.stop()

    asyncio.run(exchange())
    for name, (_, expected) in cases.items():
        assert expected in caplog.text, name
    assert 'over the limit' in caplog.text


@pytest.mark.slow
def test_listener_refuses_hostile_notices(listener, gcn_received,
                                          gcn_samples, http_trap):
    limit = app.conf.vtp_max_packet_size
    good = gcn_samples['snews_gcn.xml']
    steps = [(frame(build('voevent', limit, http_trap.url)), False)
             for build, _ in CASES.values()] + [(frame(good), False)]
    server = HostileServer(steps)
    server.start()
    try:
        worker = listener(server.port)
        wait_for(gcn_received, timeout=60,
                 what='the good notice after the others')
    finally:
        server.close()
    server.join(20)
    # Every hostile packet cost the listener its connection (it closed it,
    # acking nothing); the good notice after them was acked and handled.
    assert server.outcomes[:-1] == [
        {'replies': [], 'closed_by_listener': True}] * len(CASES)
    assert ('ack', 'ivo://nasa.gsfc.gcn/SNEWS#Event2018-09-18T16:00:01.00_'
            '1000194-580') in server.outcomes[-1]['replies']
    assert [r['sha256'] for r in gcn_received()] == [sha256(good)]
    log = worker.log()
    # One warning line each (the size limit is the framing's), no traceback.
    assert log.count('Refused a packet of') == len(CASES) - 1
    for name, (_, expected) in CASES.items():
        assert expected in log, name
    assert 'Traceback' not in log


#: The local GraceDb's uploads: name → (root kind, upload(client, bytes)).
def _create_cbc(client, content):
    return client.create_event('CBC', 'gstlal', 'coinc.xml',
                               search='AllSky', filecontents=content)


def _create_external(client, content):
    return client.create_event('External', 'Fermi', 'fermi.xml',
                               search='GRB', filecontents=content)


def _replace(client, content):
    graceid = create_cbc(client)['graceid']
    return client.replace_event(graceid, 'coinc.xml', filecontents=content)


UPLOADS = {
    'create CBC event': ('ligolw', _create_cbc),
    'create External event': ('voevent', _create_external),
    'replace event': ('ligolw', _replace),
}

#: What the local GraceDb says instead, where it refuses before parsing.
GRACEDB_MESSAGES = {'empty': 'eventFile is empty'}


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('upload', UPLOADS)
def test_local_gracedb_answers_400_and_carries_on(gracedb, upload, case,
                                                  http_trap):
    kind, send = UPLOADS[upload]
    build, expected = CASES[case]
    content = build(kind, MAX_XML_BYTES, http_trap.url)
    with pytest.raises(HTTPError) as info:
        send(gracedb, content)
    assert info.value.status_code == 400
    assert GRACEDB_MESSAGES.get(case, expected) in info.value.text
    assert create_cbc(gracedb)['graceid']


def test_local_gracedb_bounds_gzip_files(gracedb, http_trap):
    # 32 MiB of XML in a 33 kB upload: refused without decompressing it all.
    _, start, end = ROOTS['ligolw']
    content = gzip.compress(start + b' ' * MAX_XML_BYTES + end, 1)
    with pytest.raises(HTTPError) as info:
        _create_cbc(gracedb, content)
    assert info.value.status_code == 400
    assert 'once decompressed' in info.value.text
    # A real coinc.xml whose DOCTYPE names the trap: accepted, not fetched.
    coinc = re.sub(rb'SYSTEM "[^"]*"', b'SYSTEM "%sligolw_dtd.txt"' % (
        http_trap.url.encode()), COINC)
    assert b'127.0.0.1' in coinc
    assert _create_cbc(gracedb, gzip.compress(coinc)).status_code == 201
