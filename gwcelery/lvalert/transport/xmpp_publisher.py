"""The publishing half of the XMPP transport (see :mod:`.xmpp`): a slixmpp
client of its own on an event loop in a background thread, so that
synchronous code in any thread publishes through one connection."""
import asyncio
import logging
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from ...util.asyncio_thread import LoopThread
from .xmpp_client import (PUBSUB_NS, BackoffMixin, close_client, condition,
                          configure)

__all__ = ('Publisher',)

log = logging.getLogger(__name__)


class _PublisherClient(BackoffMixin, slixmpp.ClientXMPP):

    def __init__(self, transport, max_backoff):
        creds, host = transport.creds, transport.server.host
        super().__init__(f'{creds.username}@{host}/'
                         f'publisher-{uuid.uuid4().hex[:8]}',
                         creds.password)
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0060')
        configure(self, host, max_backoff)
        self.address = transport.address
        self.pubsub = f'pubsub.{host}'
        self.online = asyncio.Event()
        self.stopping = False
        self.known_nodes = set()
        self.waiters = set()
        self.add_event_handler('session_start', self._on_session)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('failed_all_auth', self._on_failed_auth)
        self.add_event_handler('connection_failed', self._on_failed)
        self.offline_since = None

    def _on_session(self, event):
        if self.offline_since is None:
            log.info('LVAlert publisher connected as %s', self.boundjid.bare)
        else:
            log.warning('LVAlert publisher connected again as %s after %.1f '
                        's away', self.boundjid.bare,
                        self.loop.time() - self.offline_since)
            self.offline_since = None
        self.online.set()

    def _on_failed(self, error):
        # One line per attempt: the back-off spaces them out (up to
        # max_backoff), so an outage makes a few lines, not a flood.
        log.warning('LVAlert publisher cannot connect to %s:%s: %s; '
                    'retrying', *self.address, error)

    def _on_failed_auth(self, event):
        log.error('LVAlert server %s refused the publisher credentials of '
                  'user %s', self.address[0], self.boundjid.user)

    def _on_disconnected(self, reason):
        self.online.clear()
        # Requests in flight will get no answer on this stream.
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(reason)
        if not self.stopping:
            if self.offline_since is None:
                self.offline_since = self.loop.time()
            log.warning('LVAlert publisher disconnected (%s); reconnecting',
                        reason)
            self.loop.call_later(0.5, self._reconnect)

    def _reconnect(self):
        if not self.stopping:
            self.connect(*self.address)


class Publisher:
    """Publishes on an XMPP pubsub service through one connection.

    Parameters
    ----------
    transport : .xmpp.XMPPTransport
        Server, credentials (of a user allowed to create nodes and
        publish), ``timeout`` (seconds to wait for the connection and for
        each publication) and ``node_max_items``.
    max_backoff : float, optional
        Longest pause between reconnection attempts (seconds); by default
        the transport's.
    """

    def __init__(self, transport, max_backoff=None):
        if max_backoff is None:
            max_backoff = transport.max_backoff
        self.timeout = transport.timeout
        self.node_max_items = transport.node_max_items
        self._thread = LoopThread('lvalert-publisher').start()
        try:
            self._client = self._call(self._start(transport, max_backoff))
        except BaseException:
            self._thread.stop()
            raise

    def _call(self, coroutine):
        return self._thread.call(coroutine, self.timeout + 5)

    async def _start(self, transport, max_backoff):
        client = _PublisherClient(transport, max_backoff)
        client.connect(*client.address)
        try:
            await asyncio.wait_for(client.online.wait(), self.timeout)
        except asyncio.TimeoutError:
            await close_client(client, wait=0)
            raise ConnectionError(
                f'No XMPP session with {transport.server.redacted} within '
                f'{self.timeout} s') from None
        return client

    async def _online(self):
        try:
            await asyncio.wait_for(self._client.online.wait(), self.timeout)
        except asyncio.TimeoutError:
            raise ConnectionError('LVAlert publisher is not connected') \
                from None

    async def _create(self, node):
        await self._online()
        # The items a node keeps are what listeners can recover after an
        # outage (prosody's default node keeps 20).
        form = None
        if self.node_max_items is not None:
            form = self._client.plugin['xep_0004'].make_form(ftype='submit')
            form.add_field(var='pubsub#max_items',
                           value=str(self.node_max_items))
        try:
            await self._client.plugin['xep_0060'].create_node(
                self._client.pubsub, node, config=form, timeout=self.timeout)
            log.info('Created LVAlert node %s', node)
        except IqError as e:
            if condition(e) != 'conflict':  # conflict: it exists
                raise
        self._client.known_nodes.add(node)

    async def _publish(self, node, text):
        client = self._client
        if node not in client.known_nodes:
            await self._create(node)
        entry = ET.Element(f'{{{PUBSUB_NS}}}entry')
        entry.text = text
        item_id = uuid.uuid4().hex
        for attempt in range(2):
            await self._online()
            try:
                await self._request(client.plugin['xep_0060'].publish(
                    client.pubsub, node, id=item_id, payload=entry,
                    timeout=self.timeout), node, len(text))
                return item_id
            except IqError as e:
                if condition(e) != 'item-not-found' or attempt:
                    # Not str(e): it quotes the whole stanza.
                    raise RuntimeError(
                        f'The LVAlert server refused the item on node {node}'
                        f': {condition(e)} {e.text or ""}'.rstrip()) \
                        from None
                # Deleted since we created it (or the server forgot it).
                client.known_nodes.discard(node)
                await self._create(node)

    async def _request(self, request, node, size):
        """Await an IQ, failing at once if the stream drops meanwhile."""
        client = self._client
        lost = client.loop.create_future()
        client.waiters.add(lost)
        task = asyncio.ensure_future(request)
        try:
            await asyncio.wait({task, lost},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            client.waiters.discard(lost)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ConnectionError(
                f'The LVAlert server closed the connection while receiving '
                f'an item of {size} bytes for node {node} ({lost.result()}); '
                f'servers drop clients that send stanzas over their size '
                f'limit (prosody: 256 KiB by default)')
        try:
            return task.result()
        except IqTimeout:
            raise TimeoutError(
                f'No answer from the LVAlert server within {self.timeout} s '
                f'for an item of {size} bytes on node {node}') from None

    def create_node(self, node):
        """Create a node if it does not exist."""
        self._call(self._create(node))

    def publish(self, node, payload):
        """Publish a payload (text); return the item id."""
        text = (payload.decode('utf-8') if isinstance(payload, bytes)
                else payload)
        return self._call(self._publish(node, text))

    async def _nodes(self):
        await self._online()
        result = await self._client.plugin['xep_0060'].get_nodes(
            self._client.pubsub, timeout=self.timeout)
        return sorted(node for _, node, _ in result['disco_items']['items'])

    def nodes(self):
        """Names of the nodes of the pubsub service."""
        return self._call(self._nodes())

    def close(self):
        """Disconnect and stop the thread."""
        try:
            self._call(close_client(self._client, wait=1.0))
        finally:
            self._thread.stop()
