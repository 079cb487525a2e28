"""The XMPP transport: LVAlert as XMPP publish-subscribe (XEP-0060).

The listener is sleek-lvalert's :class:`~sleek_lvalert.LVAlertClient`
(slixmpp underneath) with what gwcelery needs on top:

* **Connection.** To ``HOST:PORT`` of the URL, as ``USER@HOST``; the
  pubsub service is ``pubsub.HOST``. Toward any host but the loopback
  interface the stream must be encrypted with STARTTLS; on loopback (test
  and local servers) plain streams with SCRAM are allowed.
* **Subscriptions.** At every session start the listener asks which nodes
  it is subscribed to and subscribes to the wanted ones that are missing;
  a node that does not exist yet is retried every
  :attr:`XMPPListener.resubscribe_interval` seconds.
* **Reconnection.** When the connection drops the listener reconnects with
  exponential back-off capped at ``max_backoff`` seconds, for as long as
  it runs.
* **Recovery.** At every session start the listener fetches the items the
  server keeps on each node (pubsub item retrieval, the newest
  ``fetch_max_items``) and delivers those it has not seen, in the order
  the server lists them (prosody: oldest first).
  Item ids already delivered are remembered in a :class:`SeenItems` store
  (in Redis when the listener runs in gwcelery, so the memory outlives the
  listener process), which also drops duplicates of live notifications.
  The first time a node is read, the items already on it are marked seen
  without being delivered: they predate this deployment.

What is recovered is bounded by the server: prosody keeps the last
``pubsub_max_items`` items of a node (100 in the configuration tested
here) and, with persistent storage, keeps them across its own restarts.

The publisher is a slixmpp client of its own on an event loop in a
background thread, so that synchronous code in any thread can publish
through one connection.
"""
import asyncio
import ipaddress
import logging
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from sleek_lvalert import LVAlertClient

__all__ = ('SeenItems', 'XMPPListener', 'XMPPPublisher')

log = logging.getLogger(__name__)

PUBSUB_NS = 'http://jabber.org/protocol/pubsub'


def _is_loopback(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split('%')[0]).is_loopback
        for info in infos)


def _configure(client, server, max_backoff):
    """Transport security and back-off of a slixmpp client."""
    loopback = _is_loopback(server.host)
    client.enable_direct_tls = False
    client.enable_starttls = not loopback
    client.enable_plaintext = loopback
    # Only on loopback: SCRAM without TLS exposes nothing on the network.
    client.plugin['feature_mechanisms'].unencrypted_scram = loopback
    client.max_backoff = max_backoff


async def _close(client, wait=2.0):
    """Disconnect a slixmpp client and end its background tasks, so that
    its event loop can be closed cleanly."""
    client.stopping = True
    client.cancel_connection_attempt()
    if client.is_connected():
        client.disconnect(wait=wait)
        try:
            await asyncio.wait_for(client.disconnected, wait + 1)
        except asyncio.TimeoutError:
            client.abort()
    task, client._run_out_filters = client._run_out_filters, None
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _close_loop(loop):
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(
            asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def _condition(error):
    return error.iq['error']['condition']


class _BackoffMixin:
    """Caps slixmpp's exponential reconnection delay (up to 300 s by
    default) at :attr:`max_backoff`."""

    max_backoff = 30.0

    def reschedule_connection_attempt(self):
        future = super().reschedule_connection_attempt()
        # The rescheduled attempt reads the delay when it starts running.
        self._connect_loop_wait = min(self._connect_loop_wait,
                                      self.max_backoff)
        return future


class SeenItems:
    """Item ids already delivered, per node.

    Parameters
    ----------
    client : redis.Redis, optional
        Where to keep them; by default in this process's memory.
    namespace : str
        Key prefix, naming the server.
    keep : int
        Ids remembered per node (more than the server keeps per node).
    """

    def __init__(self, client=None, namespace='lvalert', keep=1000):
        self.client = client
        self.namespace = namespace
        self.keep = keep
        self._memory = {}
        self._baselines = set()

    def _key(self, node):
        return f'{self.namespace}:seen:{node}'

    def add(self, node, item_id):
        """Mark an id seen; true if it was not seen before."""
        if self.client is None:
            ids = self._memory.setdefault(node, {})
            if item_id in ids:
                return False
            ids[item_id] = None
            while len(ids) > self.keep:
                del ids[next(iter(ids))]
            return True
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self._key(node), {item_id: time.time()}, nx=True)
        pipe.zremrangebyrank(self._key(node), 0, -self.keep - 1)
        added, _ = pipe.execute()
        return bool(added)

    def discard(self, node, item_id):
        """Forget an id (its delivery failed; let recovery offer it)."""
        if self.client is None:
            self._memory.get(node, {}).pop(item_id, None)
        else:
            self.client.zrem(self._key(node), item_id)

    def has_baseline(self, node):
        """Whether the node was read before (see :meth:`set_baseline`)."""
        if self.client is None:
            return node in self._baselines
        return bool(self.client.sismember(
            f'{self.namespace}:baseline', node))

    def set_baseline(self, node, item_ids):
        """Mark the items found on a node at its first reading as seen."""
        for item_id in item_ids:
            self.add(node, item_id)
        if self.client is None:
            self._baselines.add(node)
        else:
            self.client.sadd(f'{self.namespace}:baseline', node)


class _NetrcNoise(logging.Filter):
    """Drops sleek-lvalert's complaints about netrc: it reads netrc even
    when given credentials, and gwcelery has resolved them already."""

    def filter(self, record):
        return 'netrc' not in str(record.msg)


logging.getLogger('sleek_lvalert').addFilter(_NetrcNoise())


class _ListenerClient(_BackoffMixin, LVAlertClient):

    def __init__(self, listener, nodes, creds, server):
        super().__init__(username=creds.username, password=creds.password,
                         server=server.host)
        _configure(self, server, listener.max_backoff)
        self.listener = listener
        self.nodes = nodes
        self.address = (server.host, server.port)
        self.missing = set(nodes)
        self.warned = set()
        self.stopping = False
        self.sessions = 0
        self.failures = 0
        self.add_event_handler('pubsub_publish', self._on_publish)
        self.add_event_handler('session_start', self._on_session)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('failed_all_auth', self._on_failed_auth)
        self.add_event_handler('connection_failed', self._on_failed)

    def _on_failed(self, error):
        log.warning('Cannot connect to LVAlert server %s:%s: %s',
                    *self.address, error)

    def _on_failed_auth(self, event):
        log.error('LVAlert server %s refused the credentials of user %s; '
                  'retrying with back-off', self.address[0],
                  self.boundjid.user)
        self.disconnect()

    def _on_disconnected(self, reason):
        if self.stopping:
            return
        delay = min(self.max_backoff, 0.5 * 2 ** min(self.failures, 10))
        self.failures += 1
        log.warning('Disconnected from LVAlert server %s:%s (%s); '
                    'reconnecting in %.1f s', *self.address, reason, delay)
        self.loop.call_later(delay, self._reconnect)

    def _reconnect(self):
        if not self.stopping:
            self.connect(*self.address)

    async def _on_session(self, event):
        self.sessions += 1
        self.failures = 0
        log.info('LVAlert session %d started as %s', self.sessions,
                 self.boundjid.bare)
        self.send_presence()
        try:
            await self.subscribe_missing()
            await self.recover()
        except IqError as e:
            log.warning('LVAlert session setup failed (%s); nodes are '
                        'fetched again after the next reconnection',
                        _condition(e))
        except IqTimeout:
            log.warning('LVAlert server did not answer during session setup; '
                        'nodes are fetched again after the next reconnection')
        self.listener.ready.set()

    async def subscribe_missing(self):
        current = set(await self.get_subscriptions())
        self.missing = set()
        for node in self.nodes:
            if node in current:
                continue
            try:
                await self.plugin['xep_0060'].subscribe(self._pubsub_server, node)
                log.info('Subscribed to LVAlert node %s', node)
            except IqError as e:
                self.missing.add(node)
                # Warn once per node; the retries every few seconds would
                # otherwise flood the log while a node does not exist.
                level = (logging.DEBUG if node in self.warned
                         else logging.WARNING)
                self.warned.add(node)
                log.log(level, 'Cannot subscribe to LVAlert node %s (%s); '
                        'retrying every %.0f s', node, _condition(e),
                        self.listener.resubscribe_interval)

    async def recover(self):
        seen = self.listener.seen
        for node in self.nodes:
            if node in self.missing:
                continue
            result = await self.plugin['xep_0060'].get_items(
                self._pubsub_server, node,
                max_items=self.listener.fetch_max_items)
            items = [(item['id'], _payload_text(item))
                     for item in result['pubsub']['items']]
            # Delivered in the server's order: prosody lists oldest first.
            if not seen.has_baseline(node):
                seen.set_baseline(node, [i for i, _ in items])
                log.info('LVAlert node %s: %d items already on the server '
                         'predate this listener and are skipped',
                         node, len(items))
                continue
            recovered = sum(self.listener.deliver(node, item_id, text)
                            for item_id, text in items)
            if recovered:
                log.info('LVAlert node %s: recovered %d items published '
                         'while disconnected', node, recovered)

    def _on_publish(self, msg):
        items = msg['pubsub_event']['items']
        node = items['node']
        # Not "for item in items": stanzas share one iteration index, and
        # slixmpp is iterating this very stanza while it runs this handler.
        for item in list(items.iterables):
            if item.name == 'item':
                self.listener.deliver(node, item['id'], _payload_text(item))


def _payload_text(item):
    payload = item['payload']
    return None if payload is None else (payload.text or '')


class XMPPListener:
    """Receives LVAlert items from an XMPP pubsub service.

    Parameters
    ----------
    server : .transports.ServerURL
        The server.
    creds : .credentials.Credentials
        User name and password.
    seen : SeenItems, optional
        Store of delivered item ids (default: in memory).
    max_backoff : float
        Longest pause between reconnection attempts (seconds).
    fetch_max_items : int
        Items fetched per node at each session start, for recovery.
    """

    resubscribe_interval = 10.0
    """Seconds between attempts to subscribe to nodes that were missing."""

    def __init__(self, server, creds, seen=None, max_backoff=10.0,
                 fetch_max_items=100):
        self.server = server
        self.creds = creds
        self.seen = seen or SeenItems()
        self.max_backoff = max_backoff
        self.fetch_max_items = fetch_max_items
        self.ready = threading.Event()
        """Set once the first session has subscribed and recovered."""
        self.client = None
        self._callback = None

    @classmethod
    def from_conf(cls, conf, server, **options):
        """A listener with the configuration's credentials, remembering
        seen items in the broker's Redis."""
        import redis

        from .credentials import lookup
        creds = lookup(server.host, conf.get('lvalert_username'),
                       conf.get('lvalert_password'))
        log.info('LVAlert user %s (credentials from %s)',
                 creds.username, creds.source)
        seen = SeenItems(redis.Redis.from_url(conf.broker_url),
                         namespace=f'lvalert:xmpp:{server.host}')
        return cls(server, creds, seen=seen, **options)

    def deliver(self, node, item_id, text):
        """Hand a new item to the callback; false if it was seen before."""
        try:
            if not self.seen.add(node, item_id):
                return False
        except Exception:
            log.exception('Cannot record LVAlert item %s as seen; '
                          'delivering it anyway', item_id)
        try:
            self._callback(node, item_id, text)
        except Exception:
            log.exception('Processing LVAlert item %s on node %s failed; '
                          'it is offered again after the next reconnection',
                          item_id, node)
            try:
                self.seen.discard(node, item_id)
            except Exception:
                pass
        return True

    def run(self, nodes, callback, should_stop):
        """Receive items until should_stop() returns true.

        ``callback(node, item_id, payload)`` gets the entry's text (or
        ``None`` for an item without payload).
        """
        self._callback = callback
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run(sorted(set(nodes)),
                                              should_stop))
        finally:
            _close_loop(loop)
            asyncio.set_event_loop(None)

    async def _run(self, nodes, should_stop):
        client = self.client = _ListenerClient(
            self, nodes, self.creds, self.server)
        client.connect(*client.address)
        next_check = time.monotonic() + self.resubscribe_interval
        try:
            while not should_stop():
                await asyncio.sleep(0.2)
                if (client.missing and client.is_connected()
                        and time.monotonic() > next_check):
                    next_check = time.monotonic() + self.resubscribe_interval
                    try:
                        before = set(client.missing)
                        await client.subscribe_missing()
                        if before - client.missing:
                            await client.recover()
                    except (IqError, IqTimeout) as e:
                        log.warning('Resubscribing failed: %s',
                                    type(e).__name__)
        finally:
            await _close(client)

    def close(self):
        client = getattr(self.seen, 'client', None)
        if client is not None:
            client.close()


class _PublisherClient(_BackoffMixin, slixmpp.ClientXMPP):

    def __init__(self, creds, server, max_backoff):
        super().__init__(f'{creds.username}@{server.host}/'
                         f'publisher-{uuid.uuid4().hex[:8]}',
                         creds.password)
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0060')
        _configure(self, server, max_backoff)
        self.address = (server.host, server.port)
        self.pubsub = f'pubsub.{server.host}'
        self.online = asyncio.Event()
        self.stopping = False
        self.known_nodes = set()
        self.waiters = set()
        self.add_event_handler('session_start', self._on_session)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('failed_all_auth', self._on_failed_auth)

    def _on_session(self, event):
        log.info('LVAlert publisher connected as %s', self.boundjid.bare)
        self.online.set()

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
            log.warning('LVAlert publisher disconnected (%s); reconnecting',
                        reason)
            self.loop.call_later(0.5, self._reconnect)

    def _reconnect(self):
        if not self.stopping:
            self.connect(*self.address)


class XMPPPublisher:
    """Publishes on an XMPP pubsub service through one connection.

    Parameters
    ----------
    server : .transports.ServerURL
    creds : .credentials.Credentials
        Of a user allowed to create nodes and publish.
    timeout : float
        Seconds to wait for the connection and for each publication.
    node_max_items : str or int or None
        ``pubsub#max_items`` of the nodes this publisher creates: ``'max'``
        (the most the server allows), a number, or ``None`` for the
        server's default.
    """

    def __init__(self, server, creds, timeout=30.0, max_backoff=5.0,
                 node_max_items='max'):
        self.timeout = timeout
        self.node_max_items = node_max_items
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True,
            name='lvalert-publisher')
        self._thread.start()
        try:
            self._client = self._call(self._start(creds, server, max_backoff))
        except BaseException:
            self._shutdown()
            raise

    def _call(self, coroutine):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self.timeout + 5)
        except TimeoutError:
            future.cancel()
            raise

    async def _start(self, creds, server, max_backoff):
        client = _PublisherClient(creds, server, max_backoff)
        client.connect(*client.address)
        try:
            await asyncio.wait_for(client.online.wait(), self.timeout)
        except asyncio.TimeoutError:
            await _close(client, wait=0)
            raise ConnectionError(
                f'No XMPP session with {server.redacted} within '
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
            if _condition(e) != 'conflict':  # conflict: it exists
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
                if _condition(e) != 'item-not-found' or attempt:
                    # Not str(e): it quotes the whole stanza.
                    raise RuntimeError(
                        f'The LVAlert server refused the item on node {node}'
                        f': {_condition(e)} {e.text or ""}'.rstrip()) \
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
        self._call(self._create(node))

    def publish(self, node, payload):
        text = (payload.decode('utf-8') if isinstance(payload, bytes)
                else payload)
        return self._call(self._publish(node, text))

    async def _nodes(self):
        await self._online()
        result = await self._client.plugin['xep_0060'].get_nodes(
            self._client.pubsub, timeout=self.timeout)
        return sorted(node for _, node, _ in result['disco_items']['items'])

    def nodes(self):
        return self._call(self._nodes())

    async def _stop(self):
        await _close(self._client, wait=1.0)

    def _shutdown(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            _close_loop(self._loop)

    def close(self):
        try:
            self._call(self._stop())
        finally:
            self._shutdown()
