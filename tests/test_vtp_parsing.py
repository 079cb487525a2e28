"""Safe parsing and framing of VOEvent Transport Protocol packets (pure logic
and a real socket pair)."""
import socket
import struct
import threading

import pytest
from lxml import etree

from gwcelery.vtp.framing import FramingError, frame, recv_packet
from gwcelery.vtp.parsing import (UnsafeXMLError, get_ivorn, get_notice_type,
                                  is_voevent, parse, transport,
                                  transport_role)

from .fixtures.gcn import SAMPLES, voevent

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0"
    ivorn="ivo://bomb" role="test" version="2.0"><Why>&lol9;</Why></voe:VOEvent>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0"
    ivorn="ivo://xxe" role="test" version="2.0"><Why>&secret;</Why></voe:VOEvent>
"""


@pytest.mark.parametrize('name', sorted(SAMPLES))
def test_samples_parse_with_type_and_ivorn(gcn_samples, name):
    root = parse(gcn_samples[name])
    assert is_voevent(root)
    assert get_ivorn(root).startswith('ivo://')
    assert get_notice_type(root) == SAMPLES[name][0]


SMALL_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0"
    ivorn="ivo://bomb" role="test" version="2.0"><Why>&b;&b;&b;</Why></voe:VOEvent>
"""


def test_entity_bomb_is_refused():
    # libxml2 may stop it on its own (amplification limit) or we refuse the
    # DTD: either way a syntax error, which pygcn's client handles.
    with pytest.raises(etree.XMLSyntaxError):
        parse(BILLION_LAUGHS)
    with pytest.raises(UnsafeXMLError, match='DTD'):
        parse(SMALL_BOMB)


def test_external_entity_is_refused_and_not_read():
    with pytest.raises(UnsafeXMLError, match='DTD'):
        parse(XXE)


def test_oversized_document_is_refused_before_parsing():
    payload = voevent('ivo://big', padding=2000)
    with pytest.raises(UnsafeXMLError, match='exceeds the limit of 1000'):
        parse(payload, max_size=1000)
    assert get_ivorn(parse(payload, max_size=len(payload))) == 'ivo://big'


@pytest.mark.parametrize('payload', [
    b'', b'garbage', b'<unclosed>', b'\xff\xfe\x00<', b'<a></b>'])
def test_malformed_documents_raise_syntax_errors(payload):
    with pytest.raises(etree.XMLSyntaxError):
        parse(payload)


def test_text_is_refused():
    with pytest.raises(TypeError):
        parse('<a/>')


def test_notice_type_missing_or_bad():
    root = parse(b'<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/'
                 b'v2.0" ivorn="ivo://x"><What/></voe:VOEvent>')
    with pytest.raises(ValueError, match='no Packet_Type'):
        get_notice_type(root)
    root = parse(voevent('ivo://x').replace(b'value="112"', b'value="abc"'))
    with pytest.raises(ValueError, match='not an integer'):
        get_notice_type(root)


def test_transport_messages_round_trip():
    message = parse(transport('ack', 'ivo://a#1', 'ivo://me', meta='fine'))
    assert transport_role(message) == 'ack'
    assert message.findtext('Origin') == 'ivo://a#1'
    assert message.findtext('Response') == 'ivo://me'
    assert message.findtext('Meta/Result') == 'fine'
    assert transport_role(parse(voevent('ivo://b'))) is None
    # Text that looks like markup is escaped, not injected.
    message = parse(transport('iamalive', 'ivo://<x>&'))
    assert message.findtext('Origin') == 'ivo://<x>&'


# -- framing, over a real socket pair ------------------------------------

@pytest.fixture
def sockets():
    a, b = socket.socketpair()
    b.settimeout(5)
    yield a, b
    a.close()
    b.close()


def test_frame_and_receive(sockets):
    a, b = sockets
    a.sendall(frame(b'<one/>') + frame(b'<two/>'))
    assert recv_packet(b) == b'<one/>'
    assert recv_packet(b) == b'<two/>'


def test_huge_length_prefix_is_refused_without_reading(sockets):
    a, b = sockets
    a.sendall(struct.pack('!I', 100 << 20))
    with pytest.raises(FramingError, match='104857600 bytes, over the limit'):
        recv_packet(b, max_size=1 << 20)


def test_truncated_packet(sockets):
    a, b = sockets
    a.sendall(struct.pack('!I', 1000) + b'<VOEvent')
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(FramingError, match='closed'):
        recv_packet(b)


def test_slow_sender_times_out(sockets):
    a, b = sockets
    b.settimeout(0.3)
    a.sendall(struct.pack('!I', 10) + b'<a')
    with pytest.raises(socket.timeout):
        recv_packet(b)
    assert b.gettimeout() == 0.3


def test_packet_split_across_writes(sockets):
    a, b = sockets
    data = frame(voevent('ivo://split', padding=50000))
    sender = threading.Thread(target=lambda: [
        a.sendall(data[i:i + 999]) for i in range(0, len(data), 999)])
    sender.start()
    assert recv_packet(b) == data[4:]
    sender.join()
