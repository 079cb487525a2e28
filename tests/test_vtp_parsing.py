"""Parsing and framing of VOEvent Transport Protocol packets (pure logic
and a real socket pair); hostile XML: tests/test_xml_safety.py."""
import socket
import struct
import threading

import pytest

from gwcelery.util.xml import voevent_ivorn
from gwcelery.vtp.framing import FramingError, frame, recv_packet
from gwcelery.vtp.parsing import (get_notice_type, parse_packet, transport,
                                  transport_role)

from .fixtures.gcn import SAMPLES, voevent


@pytest.mark.parametrize('name', sorted(SAMPLES))
def test_samples_parse_with_type_and_ivorn(gcn_samples, name):
    root = parse_packet(gcn_samples[name])
    assert voevent_ivorn(root).startswith('ivo://')
    assert get_notice_type(root) == SAMPLES[name][0]


def test_notice_type_missing_or_bad():
    root = parse_packet(
        b'<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
        b'ivorn="ivo://x"><What/></voe:VOEvent>')
    with pytest.raises(ValueError, match='no Packet_Type'):
        get_notice_type(root)
    root = parse_packet(
        voevent('ivo://x').replace(b'value="112"', b'value="abc"'))
    with pytest.raises(ValueError, match='not an integer'):
        get_notice_type(root)


def test_transport_messages_round_trip():
    message = parse_packet(
        transport('ack', 'ivo://a#1', 'ivo://me', meta='fine'))
    assert transport_role(message) == 'ack'
    assert message.findtext('Origin') == 'ivo://a#1'
    assert message.findtext('Response') == 'ivo://me'
    assert message.findtext('Meta/Result') == 'fine'
    assert transport_role(parse_packet(voevent('ivo://b'))) is None
    # Text that looks like markup is escaped, not injected.
    message = parse_packet(transport('iamalive', 'ivo://<x>&'))
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
