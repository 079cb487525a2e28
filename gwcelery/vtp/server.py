"""A VOEvent Transport Protocol broadcaster: one server, many subscribers.

:class:`Broadcaster` accepts TCP connections from whitelisted addresses only
and serves every VOEvent given to :meth:`Broadcaster.broadcast` to all of
them. Every ``iamalive_interval`` seconds it sends each
subscriber an ``iamalive`` and drops those that did not answer the previous
one. It records the ``ack`` (or ``nak``) that each subscriber returns for
each VOEvent.

Each subscriber has its own send queue and writer task, and every write has
a deadline, so one that never reads, never answers or sends garbage is
dropped without delaying the others. Packets from subscribers are read with
the size limit and parsed with :func:`.parsing.parse_packet`.

It is asyncio code; :class:`BroadcasterThread` runs one in a background
thread for synchronous callers (the voevent worker's ``send`` task).
"""
import asyncio
import ipaddress
import logging
import socket
import time

from ..util.asyncio_thread import LoopThread
from ..util.xml import XMLError, parse, voevent_ivorn
from .framing import FramingError, frame, read_packet
from .parsing import MAX_PACKET_SIZE, parse_packet, transport, transport_role

__all__ = ('NoSubscribers', 'Whitelist', 'parse_address', 'Broadcaster',
           'BroadcasterThread')

log = logging.getLogger(__name__)


class NoSubscribers(RuntimeError):
    """No subscriber is connected, so nobody would receive the VOEvent."""


def parse_address(text, default_host='127.0.0.1'):
    """Split ``'HOST:PORT'`` (or ``':PORT'``, ``'[::1]:PORT'``).

    Returns
    -------
    tuple
        ``(host, port)`` with ``port`` an int.
    """
    host, sep, port = str(text).rpartition(':')
    if not sep or not port.isdigit():
        raise ValueError(f'expected HOST:PORT, got {text!r}')
    host = host.strip('[]') or default_host
    return host, int(port)


class Whitelist:
    """The addresses allowed to connect.

    Entries are IP addresses, networks (``'10.0.0.0/8'``) or host names,
    which are resolved once, when the whitelist is made.
    """

    def __init__(self, entries):
        if isinstance(entries, str):
            entries = [entries]
        self.entries = list(entries)
        self.networks = []
        for entry in self.entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            try:
                infos = socket.getaddrinfo(entry, None)
            except OSError as e:
                log.warning('Whitelist entry %r does not resolve (%s); '
                            'ignoring it', entry, e)
                continue
            for info in infos:
                self.networks.append(ipaddress.ip_network(info[4][0]))

    def __contains__(self, address):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if getattr(ip, 'ipv4_mapped', None) is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __repr__(self):
        return f'Whitelist({self.entries!r})'


class _Peer:
    """One connected subscriber and its bookkeeping."""

    def __init__(self, reader, writer, queue_size, now):
        host, port = writer.get_extra_info('peername')[:2]
        self.name = f'{host}:{port}'
        self.reader = reader
        self.writer = writer
        self.queue = asyncio.Queue(queue_size)
        self.write_task = None
        self.connected_at = time.time()
        self.last_heard = now
        self.iamalive_sent = None
        self.pending = {}  # ivorn -> [(future, time sent)]
        self.sent = self.acked = self.nakked = self.malformed = 0

    def info(self, now):
        return {
            'peer': self.name,
            'connected_since': self.connected_at,
            'seconds_since_heard': round(now - self.last_heard, 3),
            'sent': self.sent,
            'acked': self.acked,
            'nakked': self.nakked,
            'malformed': self.malformed,
            'queued': self.queue.qsize(),
        }


class Broadcaster:
    """A VTP server that broadcasts VOEvents to its subscribers.

    Parameters
    ----------
    address : str
        ``'HOST:PORT'`` to listen on (port 0: any free port).
    whitelist : iterable of str
        Addresses, networks or host names allowed to subscribe.
    ivorn : str
        This server's IVORN, sent in ``iamalive`` messages.
    iamalive_interval : float
        Seconds between ``iamalive`` messages; a subscriber that has not
        answered one by the time the next is due is dropped.
    ack_timeout : float
        Seconds :meth:`broadcast` waits for acks.
    write_timeout : float
        Seconds a subscriber may take to read what is sent to it before it
        is dropped.
    max_packet_size : int
        Largest packet accepted from a subscriber.
    queue_size : int
        Packets queued for one subscriber before it is dropped as stuck.
    name : str
        For log messages.
    """

    def __init__(self, address='127.0.0.1:5341', whitelist=('127.0.0.1',), *,
                 ivorn='ivo://gwcelery/broadcaster', iamalive_interval=60.0,
                 ack_timeout=10.0, write_timeout=10.0,
                 max_packet_size=MAX_PACKET_SIZE, queue_size=1000,
                 name='VOEvent broadcaster'):
        self.host, self.port = parse_address(address)
        self.whitelist = Whitelist(whitelist)
        self.ivorn = ivorn
        self.iamalive_interval = float(iamalive_interval)
        self.ack_timeout = float(ack_timeout)
        self.write_timeout = float(write_timeout)
        self.max_packet_size = int(max_packet_size)
        self.queue_size = int(queue_size)
        self.name = name
        self.peers = {}
        self.refused = 0
        self._server = None
        self._iamalive_task = None
        self._has_peers = None

    # -- life cycle ------------------------------------------------------

    async def start(self):
        """Bind the port and start serving."""
        self._has_peers = asyncio.Event()
        self._server = await asyncio.start_server(
            self._serve_peer, self.host, self.port, reuse_address=True)
        self._iamalive_task = asyncio.create_task(self._iamalive_loop())
        log.info('%s listening on %s:%d; subscribers allowed from %s',
                 self.name, *self.address, ', '.join(
                     map(str, self.whitelist.entries)) or 'nowhere')

    @property
    def address(self):
        """The ``(host, port)`` actually bound."""
        return self._server.sockets[0].getsockname()[:2]

    async def stop(self):
        """Close the server and every subscriber's connection."""
        if self._server is None:
            return
        self._server.close()
        self._iamalive_task.cancel()
        for peer in list(self.peers.values()):
            self._drop(peer, 'the broadcaster is stopping', warn=False)
        await self._server.wait_closed()
        self._server = None
        log.info('%s stopped', self.name)

    async def wait_for_subscriber(self):
        """Return once at least one subscriber is connected."""
        await self._has_peers.wait()

    def info(self):
        """What ``gwcelery inspect stats`` shows: address and subscribers."""
        now = asyncio.get_running_loop().time()
        host, port = self.address if self._server else (self.host, self.port)
        return {
            'address': f'{host}:{port}',
            'whitelist': [str(e) for e in self.whitelist.entries],
            'refused_connections': self.refused,
            'peers': [peer.info(now) for peer in self.peers.values()],
        }

    async def async_info(self):
        return self.info()

    # -- subscribers -----------------------------------------------------

    async def _serve_peer(self, reader, writer):
        host, port = writer.get_extra_info('peername')[:2]
        if host not in self.whitelist:
            self.refused += 1
            log.warning('%s: refused a connection from %s:%s, which is not '
                        'in the whitelist', self.name, host, port)
            writer.transport.abort()
            return
        peer = _Peer(reader, writer, self.queue_size,
                     asyncio.get_running_loop().time())
        self.peers[peer.name] = peer
        self._has_peers.set()
        log.info('%s: subscriber %s connected (%d connected)',
                 self.name, peer.name, len(self.peers))
        peer.write_task = asyncio.create_task(self._write_loop(peer))
        reason, warn = 'it closed the connection', False
        try:
            await self._read_loop(peer)
        except FramingError as e:
            reason, warn = str(e), True
        except OSError as e:
            reason, warn = f'connection error: {e}', True
        finally:
            self._drop(peer, reason, warn=warn)

    async def _read_loop(self, peer):
        loop = asyncio.get_running_loop()
        while True:
            payload = await read_packet(peer.reader, self.max_packet_size)
            if payload is None:
                return
            try:
                root = parse_packet(payload, self.max_packet_size)
            except XMLError as e:
                peer.malformed += 1
                log.warning('%s: ignoring a malformed packet of %d bytes from '
                            '%s: %s', self.name, len(payload), peer.name, e)
                continue
            role = transport_role(root)
            if role in ('ack', 'nak'):
                peer.last_heard = loop.time()
                self._on_receipt(peer, role, root, loop.time())
            elif role == 'iamalive':
                peer.last_heard = loop.time()
                log.debug('%s: iamalive from %s', self.name, peer.name)
            elif role is None:
                log.warning('%s: ignoring VOEvent %s from subscriber %s: '
                            'subscribers do not publish', self.name,
                            voevent_ivorn(root), peer.name)
            else:
                log.warning('%s: ignoring a Transport message with role %r '
                            'from %s', self.name, role, peer.name)

    def _on_receipt(self, peer, role, root, now):
        origin = (root.findtext('Origin') or '').strip()
        waiting = peer.pending.get(origin)
        if not waiting:
            log.info('%s: %s from %s for %r, which it was not sent',
                     self.name, role, peer.name, origin)
            return
        future, sent = waiting.pop(0)
        if not waiting:
            del peer.pending[origin]
        if role == 'ack':
            peer.acked += 1
        else:
            peer.nakked += 1
            log.warning('%s: %s refused %s (nak): %s', self.name, peer.name,
                        origin, root.findtext('Meta/Result') or 'no reason')
        if not future.done():
            future.set_result((role == 'ack', now - sent))

    async def _write_loop(self, peer):
        while True:
            data = await peer.queue.get()
            try:
                peer.writer.write(data)
                await asyncio.wait_for(
                    peer.writer.drain(), self.write_timeout)
            except asyncio.TimeoutError:
                self._drop(peer, f'it did not read what it was sent for '
                           f'{self.write_timeout} s')
                return
            except OSError as e:
                self._drop(peer, f'connection error: {e}')
                return

    def _enqueue(self, peer, data):
        try:
            peer.queue.put_nowait(data)
        except asyncio.QueueFull:
            self._drop(peer, f'{self.queue_size} packets are waiting for it')

    def _drop(self, peer, reason, warn=True):
        if self.peers.get(peer.name) is not peer:
            return
        del self.peers[peer.name]
        if not self.peers:
            self._has_peers.clear()
        (log.warning if warn else log.info)(
            '%s: dropped subscriber %s: %s (%d connected)',
            self.name, peer.name, reason, len(self.peers))
        current = asyncio.current_task()
        if peer.write_task is not None and peer.write_task is not current:
            peer.write_task.cancel()
        peer.writer.transport.abort()
        for waiting in peer.pending.values():
            for future, _ in waiting:
                if not future.done():
                    future.set_result((False, None))
        peer.pending.clear()

    async def _iamalive_loop(self):
        while True:
            await asyncio.sleep(self.iamalive_interval)
            now = asyncio.get_running_loop().time()
            data = frame(transport('iamalive', self.ivorn))
            for peer in list(self.peers.values()):
                if (peer.iamalive_sent is not None
                        and peer.last_heard < peer.iamalive_sent):
                    self._drop(peer, 'it did not answer iamalive within '
                               f'{self.iamalive_interval} s')
                    continue
                peer.iamalive_sent = now
                self._enqueue(peer, data)

    # -- sending ---------------------------------------------------------

    async def broadcast(self, payload):
        """Send a VOEvent to every subscriber and wait for their acks.

        Parameters
        ----------
        payload : bytes
            The VOEvent XML.

        Returns
        -------
        dict
            ``ivorn``; ``acked``, the subscribers that acked within
            ``ack_timeout``; ``unacked``, the others (nak, no answer,
            or dropped); ``ack_latency``, seconds from queueing to ack for
            each subscriber that acked.

        Raises
        ------
        NoSubscribers
            If no subscriber is connected.
        gwcelery.util.xml.XMLError
            If the payload is not a VOEvent with an IVORN, or is unsafe.
        """
        ivorn = voevent_ivorn(parse(payload, self.max_packet_size))
        if not self.peers:
            raise NoSubscribers(f'{self.name}: no subscriber is connected')
        loop = asyncio.get_running_loop()
        data = frame(payload)
        futures = {}
        for peer in list(self.peers.values()):
            future = loop.create_future()
            peer.pending.setdefault(ivorn, []).append((future, loop.time()))
            futures[peer.name] = (peer, future)
            peer.sent += 1
            self._enqueue(peer, data)
        await asyncio.wait([f for _, f in futures.values()],
                           timeout=self.ack_timeout)
        result = {'ivorn': ivorn, 'acked': [], 'unacked': [],
                  'ack_latency': {}}
        for name, (peer, future) in futures.items():
            if future.done() and future.result()[0]:
                result['acked'].append(name)
                result['ack_latency'][name] = future.result()[1]
                continue
            result['unacked'].append(name)
            if not future.done():
                future.cancel()
                waiting = peer.pending.get(ivorn, [])
                waiting[:] = [(f, t) for f, t in waiting if f is not future]
                if not waiting:
                    peer.pending.pop(ivorn, None)
        if result['unacked']:
            log.warning('%s: %s was not acknowledged by %s within %s s',
                        self.name, ivorn, ', '.join(result['unacked']),
                        self.ack_timeout)
        log.info('%s: sent %s; acknowledged by %s', self.name, ivorn,
                 ', '.join(result['acked']) or 'nobody')
        return result


class BroadcasterThread:
    """Runs a :class:`Broadcaster` on an event loop in a daemon thread
    (a :class:`~gwcelery.util.asyncio_thread.LoopThread`).

    Parameters
    ----------
    broadcaster : Broadcaster
    """

    def __init__(self, broadcaster):
        self.broadcaster = broadcaster
        self._loop = LoopThread(broadcaster.name)

    def start(self, timeout=10.0):
        """Start the thread and the server; raise if the server cannot
        start (port in use, …)."""
        self._loop.start()
        try:
            self.call(self.broadcaster.start(), timeout)
        except BaseException:
            self._loop.stop(timeout)
            raise
        return self

    def call(self, coroutine, timeout):
        """Run a coroutine on the broadcaster's loop and return its result."""
        return self._loop.call(coroutine, timeout)

    def send(self, payload):
        """:meth:`Broadcaster.broadcast`, from any thread."""
        return self.call(self.broadcaster.broadcast(payload),
                         self.broadcaster.ack_timeout + 10)

    def info(self):
        """:meth:`Broadcaster.info`, from any thread."""
        return self.call(self.broadcaster.async_info(), 5)

    def stop(self, timeout=10.0):
        """Stop the server and the thread."""
        if not self._loop.running:
            return
        try:
            self.call(self.broadcaster.stop(), timeout)
        finally:
            self._loop.stop(timeout)
