"""The listening half of the XMPP transport (see :mod:`.xmpp` for what it
guarantees): a sleek-lvalert client and the loop that runs it until asked
to stop."""
import asyncio
import logging
import time

from slixmpp.exceptions import IqError, IqTimeout
from sleek_lvalert import LVAlertClient

from ...util.asyncio_thread import close_loop
from .xmpp_client import BackoffMixin, close_client, condition, configure

__all__ = ('Listener',)

log = logging.getLogger(__name__)


class _NetrcNoise(logging.Filter):
    """Drops sleek-lvalert's complaints about netrc: it reads netrc even
    when given credentials, and gwcelery has resolved them already."""

    def filter(self, record):
        return 'netrc' not in str(record.msg)


logging.getLogger('sleek_lvalert').addFilter(_NetrcNoise())


class _ListenerClient(BackoffMixin, LVAlertClient):

    def __init__(self, listener, nodes):
        transport = listener.transport
        creds = transport.creds
        super().__init__(username=creds.username, password=creds.password,
                         server=transport.server.host)
        configure(self, transport.server.host, transport.max_backoff)
        self.listener = listener
        self.nodes = nodes
        self.address = transport.address
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
        # Not subscribed until the next session is set up.
        self.listener.transport.ready.clear()
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
                        condition(e))
        except IqTimeout:
            log.warning('LVAlert server did not answer during session setup; '
                        'nodes are fetched again after the next reconnection')
        self.listener.transport.ready.set()

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
                if (condition(e) == 'item-not-found'
                        and not self.listener.seen.has_baseline(node)):
                    # The node does not exist yet: whatever it will hold
                    # was published after this listener wanted it, so none
                    # of it may be skipped as older than the listener.
                    self.listener.seen.set_baseline(node, [])
                # Warn once per node; the retries every few seconds would
                # otherwise flood the log while a node does not exist.
                level = (logging.DEBUG if node in self.warned
                         else logging.WARNING)
                self.warned.add(node)
                log.log(level, 'Cannot subscribe to LVAlert node %s (%s); '
                        'retrying every %.0f s', node, condition(e),
                        self.listener.transport.resubscribe_interval)

    async def recover(self):
        seen = self.listener.seen
        for node in self.nodes:
            if node in self.missing:
                continue
            result = await self.plugin['xep_0060'].get_items(
                self._pubsub_server, node,
                max_items=self.listener.transport.fetch_max_items)
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


class Listener:
    """One run of :meth:`.xmpp.XMPPTransport.listen`.

    Parameters
    ----------
    transport : .xmpp.XMPPTransport
        Server, credentials, store of seen items and limits.
    callback : callable
        ``callback(node, item_id, payload)``.
    """

    def __init__(self, transport, callback):
        self.transport = transport
        self.seen = transport.seen
        self.callback = callback
        self.client = None

    def deliver(self, node, item_id, text):
        """Hand a new item to the callback; false if it was seen before."""
        try:
            if not self.seen.add(node, item_id):
                return False
        except Exception:
            log.exception('Cannot record LVAlert item %s as seen; '
                          'delivering it anyway', item_id)
        try:
            self.callback(node, item_id, text)
        except Exception:
            log.exception('Processing LVAlert item %s on node %s failed; '
                          'it is offered again after the next reconnection',
                          item_id, node)
            try:
                self.seen.discard(node, item_id)
            except Exception:
                pass
        return True

    def run(self, nodes, should_stop):
        """Receive items on an event loop of this thread until
        ``should_stop()`` returns true."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run(sorted(set(nodes)),
                                              should_stop))
        finally:
            close_loop(loop)
            asyncio.set_event_loop(None)

    async def _run(self, nodes, should_stop):
        client = self.client = _ListenerClient(self, nodes)
        client.connect(*client.address)
        interval = self.transport.resubscribe_interval
        next_check = time.monotonic() + interval
        try:
            while not should_stop():
                await asyncio.sleep(0.2)
                if (client.missing and client.is_connected()
                        and time.monotonic() > next_check):
                    next_check = time.monotonic() + interval
                    try:
                        before = set(client.missing)
                        await client.subscribe_missing()
                        if before - client.missing:
                            await client.recover()
                    except (IqError, IqTimeout) as e:
                        log.warning('Resubscribing failed: %s',
                                    type(e).__name__)
        finally:
            await close_client(client)
