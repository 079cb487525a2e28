"""The XMPP transport: LVAlert as XMPP publish-subscribe (XEP-0060).

``xmpp://[USER[:PASSWORD]@]HOST[:PORT]`` (port 5222 by default), the pubsub
service ``pubsub.HOST``, as the production LVAlert servers run it. The
listener is sleek-lvalert's client (:mod:`.xmpp_listener`), the publisher a
slixmpp client of its own (:mod:`.xmpp_publisher`), each on its own
connection, opened when first needed.

Credentials
    The user name and password of the URL, else those given (from
    :data:`~gwcelery.conf.lvalert_username` and
    :data:`~gwcelery.conf.lvalert_password` through :meth:`XMPPTransport.from_conf`),
    else the netrc entry of the host (:mod:`gwcelery.lvalert.credentials`).
    Passwords are never logged.
Security
    Toward any host but the loopback interface the stream must be
    encrypted with STARTTLS; on loopback (test and local servers) plain
    streams with SCRAM are allowed.
Publication
    :meth:`~.base.Transport.publish` returns once the server has
    acknowledged the item. It raises :exc:`TimeoutError` when the server
    does not answer within ``timeout`` seconds, and :exc:`ConnectionError`
    at once when it closes the stream, which servers do to a client that
    sends a stanza over their size limit (prosody: about 256 KiB; 100 kB
    items passed, 300 kB did not). The publisher then reconnects by itself.
    Nodes are created on first use, keeping ``node_max_items`` items
    (default: as many as the server allows).
Subscriptions
    At every session start the listener subscribes to the wanted nodes it
    is not subscribed to; a node that does not exist yet is retried every
    :attr:`XMPPTransport.resubscribe_interval` (10) seconds.
Delivery
    Live notifications are delivered as they arrive. An item whose callback
    raised is forgotten and offered again at the next session start, if the
    server still holds it. Duplicates (the same item live and recovered,
    or recovered twice) are dropped by item id.
Recovery after an outage
    When the connection drops the listener reconnects after 0.5 s, then
    with growing intervals capped at ``max_backoff`` (3 s), for as long as
    it runs, and the publisher likewise: a restarted server has its
    clients back within about three seconds of answering again (alerts
    wait that long), at the cost of a connection attempt every three
    seconds while it is down. At every session start it fetches the newest
    ``fetch_max_items`` (100) items the server keeps on each node and
    delivers those it has not seen. The ids of delivered items (the last
    1,000 per node) are kept in the broker's Redis, so this also works
    across restarts of the listener process. The first time a node is
    read, the items already on it are marked seen without being delivered:
    they predate this deployment; but a node that did not exist when the
    listener first tried to subscribe has all its items delivered once it
    appears. What is recovered is bounded by the
    server: prosody keeps the last ``pubsub_max_items`` items of a node,
    and a node created with prosody's defaults keeps 20.
Order
    Recovered items come in the server's order (prosody: oldest first);
    items arriving live while recovery runs may be delivered before older
    recovered ones, so order across an outage is not guaranteed.
Limits
    Listeners refuse payloads over :data:`~gwcelery.conf.lvalert_max_payload`;
    the server's stanza limit (above) applies first.
"""
import logging
import threading

from .. import credentials
from .base import Transport
from .xmpp_seen import SeenItems

__all__ = ('XMPPTransport',)

log = logging.getLogger(__name__)


class XMPPTransport(Transport):
    """LVAlert on an XMPP publish-subscribe service.

    Parameters
    ----------
    server : .url.ServerURL
        The server.
    username, password : str, optional
        Credentials, when the URL holds none (see above).
    seen : .xmpp_seen.SeenItems, optional
        Store of delivered item ids (default: in this process's memory).
    timeout : float
        Publisher: seconds to wait for the connection and for each
        publication.
    node_max_items : str or int or None
        Publisher: ``pubsub#max_items`` of the nodes it creates, ``'max'``
        (the most the server allows), a number, or ``None`` for the
        server's default (see :data:`~gwcelery.conf.lvalert_node_max_items`).
    max_backoff : float
        Listener and publisher: longest pause between reconnection
        attempts (seconds).
    fetch_max_items : int
        Listener: items fetched per node at each session start.

    Raises
    ------
    RuntimeError
        If no password can be found.
    """

    name = 'XMPP'
    default_port = 5222

    resubscribe_interval = 10.0
    """Seconds between attempts to subscribe to nodes that were missing."""

    def __init__(self, server, username=None, password=None, *, seen=None,
                 timeout=30.0, node_max_items='max', max_backoff=3.0,
                 fetch_max_items=100):
        super().__init__(server)
        if server.username:
            username, password = server.username, server.password
        self.creds = credentials.lookup(server.host, username, password)
        log.info('LVAlert user %s (credentials from %s)',
                 self.creds.username, self.creds.source)
        self.seen = seen or SeenItems()
        self.timeout = timeout
        self.node_max_items = node_max_items
        self.max_backoff = max_backoff
        self.fetch_max_items = fetch_max_items
        self._publisher = None
        self._publisher_lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf, server, **options):
        """The transport with the configuration's credentials and node
        depth, remembering seen items in the broker's Redis."""
        import redis

        options.setdefault('username', conf.get('lvalert_username'))
        options.setdefault('password', conf.get('lvalert_password'))
        options.setdefault('node_max_items',
                           conf.get('lvalert_node_max_items', 'max'))
        if 'seen' not in options:
            # redis-py connects on first use: a publisher never does.
            options['seen'] = SeenItems(
                redis.Redis.from_url(conf.broker_url),
                namespace=f'lvalert:xmpp:{server.host}')
        return cls(server, **options)

    def listen(self, nodes, callback, should_stop):
        """Receive items until ``should_stop()`` returns true; see
        :meth:`.Transport.listen`. Payloads are :class:`str`."""
        # Imported here: sleek-lvalert (and pkg_resources) only where a
        # listener runs, slixmpp's client only where a publisher does.
        from .xmpp_listener import Listener
        self.ready.clear()
        Listener(self, callback).run(nodes, should_stop)

    def _connected_publisher(self):
        with self._publisher_lock:
            if self._closed:
                raise RuntimeError('this LVAlert transport is closed')
            if self._publisher is None:
                from .xmpp_publisher import Publisher
                self._publisher = Publisher(self)
            return self._publisher

    def _publish(self, node, payload):
        return self._connected_publisher().publish(node, payload)

    def create_node(self, node):
        self._connected_publisher().create_node(node)

    def nodes(self):
        return self._connected_publisher().nodes()

    def _close(self):
        with self._publisher_lock:
            publisher, self._publisher = self._publisher, None
        try:
            if publisher is not None:
                publisher.close()
        finally:
            self.seen.close()
