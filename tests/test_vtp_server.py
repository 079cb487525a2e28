"""The VOEvent broadcaster with real TCP peers: pygcn's own client as the
well-behaved subscriber, raw sockets as hostile ones."""
import logging
import socket
import struct

import pytest

from gwcelery.util.waiting import wait_for
from gwcelery.util.xml import XMLError
from gwcelery.vtp.framing import frame, recv_packet
from gwcelery.vtp.parsing import parse_packet, transport_role
from gwcelery.vtp.server import (Broadcaster, BroadcasterThread,
                                 NoSubscribers, Whitelist, parse_address)

from .fixtures.gcn import sha256, voevent
from .fixtures.hostile_xml import billion_laughs


@pytest.fixture
def broadcaster():
    threads = []

    def start(**kwargs):
        kwargs.setdefault('whitelist', ('127.0.0.1',))
        thread = BroadcasterThread(Broadcaster('127.0.0.1:0', **kwargs))
        threads.append(thread.start())
        return thread

    yield start
    for thread in threads:
        thread.stop()


def port_of(thread):
    return parse_address(thread.info()['address'])[1]


def peers(thread):
    return {peer['peer']: peer for peer in thread.info()['peers']}


def raw_peer(thread, source='127.0.0.1', rcvbuf=None):
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect(('127.0.0.1', port_of(thread)))
    sock.settimeout(10)
    return sock


def test_address_parsing():
    assert parse_address('127.0.0.1:5341') == ('127.0.0.1', 5341)
    assert parse_address(':8099') == ('127.0.0.1', 8099)
    assert parse_address('[::1]:80') == ('::1', 80)
    with pytest.raises(ValueError):
        parse_address('localhost')


def test_whitelist_entries():
    whitelist = Whitelist(['127.0.0.2', '10.1.0.0/16', 'localhost',
                           'no-such-host.invalid'])
    assert '127.0.0.2' in whitelist
    assert '10.1.200.3' in whitelist
    assert '10.2.0.1' not in whitelist
    assert '127.0.0.1' in whitelist  # from localhost
    assert '::ffff:127.0.0.2' in whitelist
    assert 'garbage' not in whitelist


def test_pygcn_client_receives_and_acks(broadcaster, pygcn_client):
    thread = broadcaster()
    client = pygcn_client(port_of(thread))
    (name,) = wait_for(lambda: peers(thread), timeout=20,
                       what='pygcn to connect')
    payload = voevent('ivo://tests#one')
    result = thread.send(payload)
    assert result['ivorn'] == 'ivo://tests#one'
    assert result['acked'] == [name]
    assert result['unacked'] == []
    assert result['ack_latency'][name] >= 0
    received = wait_for(client.received, what='pygcn handler')
    assert [(r['ivorn'], r['sha256']) for r in received] == [
        ('ivo://tests#one', sha256(payload))]
    assert peers(thread)[name]['acked'] == 1


def test_every_subscriber_gets_every_notice_in_order(broadcaster,
                                                     pygcn_client):
    thread = broadcaster()
    clients = [pygcn_client(port_of(thread)) for _ in range(3)]
    wait_for(lambda: len(peers(thread)) == 3, timeout=20,
             what='three subscribers')
    ivorns = [f'ivo://tests#{i}' for i in range(5)]
    for ivorn in ivorns:
        assert len(thread.send(voevent(ivorn))['acked']) == 3
    for client in clients:
        wait_for(lambda: len(client.received()) == 5, what='five notices')
        assert [r['ivorn'] for r in client.received()] == ivorns


def test_send_without_subscribers_or_with_bad_payload(broadcaster):
    thread = broadcaster()
    with pytest.raises(NoSubscribers):
        thread.send(voevent('ivo://tests#nobody'))
    with pytest.raises(XMLError, match='not a VOEvent'):
        thread.send(b'<notavoevent/>')
    with pytest.raises(XMLError, match='no ivorn'):
        thread.send(voevent('').replace(b'ivorn=""', b''))
    with pytest.raises(XMLError, match='malformed XML'):
        thread.send(b'<<<')


def test_peer_outside_the_whitelist_is_refused(broadcaster, caplog):
    caplog.set_level(logging.INFO, logger='gwcelery.vtp')
    thread = broadcaster(whitelist=('127.0.0.2',))
    outsider = raw_peer(thread, source='127.0.0.3')
    # The server closes the connection at once (reset or end of stream).
    try:
        assert outsider.recv(1) == b''
    except ConnectionResetError:
        pass
    wait_for(lambda: thread.info()['refused_connections'] == 1)
    assert peers(thread) == {}
    assert 'refused a connection from 127.0.0.3' in caplog.text
    insider = raw_peer(thread, source='127.0.0.2')
    wait_for(lambda: peers(thread), what='the whitelisted peer')
    assert list(peers(thread))[0].startswith('127.0.0.2:')
    outsider.close()
    insider.close()


def test_iamalive_keeps_answering_peers_and_drops_silent_ones(
        broadcaster, pygcn_client, caplog):
    caplog.set_level(logging.INFO, logger='gwcelery.vtp')
    thread = broadcaster(iamalive_interval=0.3, ivorn='ivo://tests/server')
    pygcn_client(port_of(thread))
    (good,) = wait_for(lambda: peers(thread), timeout=20)
    silent = raw_peer(thread)
    wait_for(lambda: len(peers(thread)) == 2)
    (silent_name,) = set(peers(thread)) - {good}
    wait_for(lambda: silent_name not in peers(thread), timeout=10,
             what='the silent peer to be dropped')
    assert f'dropped subscriber {silent_name}: it did not answer iamalive' \
        in caplog.text
    # It was sent iamalive messages from the broadcaster before that.
    message = parse_packet(recv_packet(silent))
    assert transport_role(message) == 'iamalive'
    assert message.findtext('Origin') == 'ivo://tests/server'
    # The peer that answers stays, on its first connection, for a few more
    # rounds of iamalive.
    heard = peers(thread)[good]['seconds_since_heard']
    wait_for(lambda: peers(thread)[good]['seconds_since_heard'] < heard
             or peers(thread)[good]['seconds_since_heard'] < 0.3,
             what='another iamalive answer')
    assert good in peers(thread)
    silent.close()


def test_hostile_subscribers_do_not_delay_the_others(
        broadcaster, pygcn_client, caplog):
    caplog.set_level(logging.INFO, logger='gwcelery.vtp')
    thread = broadcaster(write_timeout=2, ack_timeout=1,
                         iamalive_interval=60)
    client = pygcn_client(port_of(thread))
    (good,) = wait_for(lambda: peers(thread), timeout=20)

    never_reads = raw_peer(thread, rcvbuf=4096)
    garbage = raw_peer(thread)
    garbage.sendall(frame(b'\x00\x01 this is not XML'))
    bomb = raw_peer(thread)
    bomb.sendall(frame(billion_laughs('voevent')))
    huge = raw_peer(thread)
    huge.sendall(struct.pack('!I', 100 << 20))
    truncated = raw_peer(thread)
    truncated.sendall(struct.pack('!I', 5000) + b'<trn:Transport')
    truncated.shutdown(socket.SHUT_WR)

    wait_for(lambda: 'over the limit' in caplog.text, what='huge prefix')
    wait_for(lambda: 'connection closed after 14 of 5000' in caplog.text,
             what='truncated frame')
    wait_for(lambda: 'malformed packet of 18 bytes' in caplog.text,
             what='garbage')
    wait_for(lambda: 'internal DTD subset' in caplog.text,
             what='entity bomb')

    # Notices of 900 kB soon fill the stuck peer's socket buffers (the
    # kernel's send buffer grows to 4 MB).
    for i in range(6):
        result = thread.send(voevent(f'ivo://tests#big{i}', padding=900_000))
        assert good in result['acked']
        # The well-behaved subscriber's ack came long before the stuck one
        # could time out: nothing waited for it.
        assert result['ack_latency'][good] < 2
    wait_for(lambda: 'did not read what it was sent' in caplog.text,
             what='the stuck peer to be dropped')
    assert len(client.received()) == 6
    # The hostile peers read nothing either, so all of them are gone now.
    assert list(peers(thread)) == [good]
    for sock in (never_reads, garbage, bomb, huge, truncated):
        sock.close()
