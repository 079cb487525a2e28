"""A VOEvent Transport Protocol subscriber in asyncio.

:func:`subscribe` connects to a VTP server (a broadcaster, such as the
voevent worker's), hands every VOEvent it receives to a coroutine, acks it
once that coroutine has returned, answers ``iamalive``, and reconnects
with back-off after any failure, a silence of ``iamalive_timeout`` seconds
included. The local GCN feed uses it to subscribe to our broadcaster as
GCN does. Packets are read with the size limit and parsed with
:func:`.parsing.parse_packet`; a packet that cannot be read closes the
connection, since the stream cannot be trusted after it.
"""
import asyncio
import logging

from ..util.xml import XMLError, voevent_ivorn
from .framing import frame, read_packet
from .parsing import MAX_PACKET_SIZE, parse_packet, transport, transport_role
from .server import parse_address

__all__ = ('subscribe',)

log = logging.getLogger(__name__)


async def _session(reader, writer, on_voevent, ivorn, max_packet_size,
                   iamalive_timeout, name):
    while True:
        payload = await asyncio.wait_for(
            read_packet(reader, max_packet_size), iamalive_timeout)
        if payload is None:
            raise ConnectionError('the server closed the connection')
        root = parse_packet(payload, max_packet_size)
        role = transport_role(root)
        if role == 'iamalive':
            reply = transport('iamalive', root.findtext('Origin') or '',
                              response=ivorn)
        elif role is None:
            notice = voevent_ivorn(root)
            log.info('%s: received %s', name, notice)
            await on_voevent(payload)
            reply = transport('ack', notice, response=ivorn)
        else:
            log.warning('%s: ignoring a Transport message with role %r',
                        name, role)
            continue
        writer.write(frame(reply))
        await writer.drain()


async def subscribe(address, on_voevent, *, ivorn='ivo://gwcelery/feed',
                    max_packet_size=MAX_PACKET_SIZE, iamalive_timeout=150.0,
                    max_reconnect_delay=16.0, name='VTP subscriber'):
    """Receive VOEvents from the VTP server at ``address`` until cancelled.

    Parameters
    ----------
    address : str
        ``'HOST:PORT'`` of the server.
    on_voevent : callable
        Coroutine function called with each VOEvent's raw bytes; the
        VOEvent is acked when it returns. If it raises, the connection is
        closed unacknowledged and opened again.
    ivorn : str
        Our IVORN, given in acks and iamalive answers.
    max_packet_size : int
        Largest packet accepted.
    iamalive_timeout : float
        Seconds of silence after which the connection is closed and
        opened again (servers send iamalive every 60 s).
    max_reconnect_delay : float
        Longest wait between attempts to connect; waits start at 1 s and
        double.
    name : str
        For log messages.
    """
    host, port = parse_address(address)
    delay = 1.0
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            log.warning('%s: cannot connect to %s:%d (%s); trying again in '
                        '%.0f s', name, host, port, e, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, max_reconnect_delay)
            continue
        delay = 1.0
        log.info('%s: subscribed to %s:%d', name, host, port)
        try:
            await _session(reader, writer, on_voevent, ivorn,
                           max_packet_size, iamalive_timeout, name)
        except (OSError, XMLError, asyncio.TimeoutError) as e:
            reason = (f'no packet for {iamalive_timeout} s'
                      if isinstance(e, asyncio.TimeoutError) else str(e))
            log.warning('%s: connection to %s:%d lost (%s); reconnecting',
                        name, host, port, reason)
        except Exception:
            log.exception('%s: error while handling a packet from %s:%d; '
                          'reconnecting', name, host, port)
        finally:
            writer.transport.abort()
        # A server that hangs up at once must not make this a busy loop.
        await asyncio.sleep(delay)
