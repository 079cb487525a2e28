"""Publishing LVAlert messages.

:class:`Publisher` is what the local GraceDb, the tests, the benchmarks and
``gwcelery lvalert publish`` use to put alerts on nodes::

    from gwcelery.lvalert.publisher import Publisher

    with Publisher.from_url('redis://127.0.0.1:6379/0') as publisher:
        publisher.publish('cbc_gstlal', {'uid': 'G1', 'alert_type': 'new'})

It keeps one connection to the server for its whole life, is safe to call
from several threads, creates a node on first use, and returns only when
the server has the item.
"""
import threading

from . import alerts
from .transports import parse_url

__all__ = ('Publisher',)


class Publisher:
    """Creates nodes and publishes alerts on one LVAlert server.

    Use :meth:`from_url` or :meth:`from_conf` to make one.

    Parameters
    ----------
    transport : object
        A transport publisher (:class:`.redis_streams.RedisPublisher` or
        :class:`.xmpp.XMPPPublisher`).
    server : .transports.ServerURL
        The server, for messages.
    """

    def __init__(self, transport, server):
        self._transport = transport
        self.server = server
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url, username=None, password=None, *,
                 stream_maxlen=10000, timeout=30.0, node_max_items='max'):
        """Connect to the server at url.

        Parameters
        ----------
        url : str
            ``redis://HOST[:PORT][/DB]`` or ``xmpp://HOST[:PORT]``.
        username, password : str, optional
            XMPP credentials; by default taken from the URL, else from the
            netrc entry of the host (see :mod:`.credentials`).
        stream_maxlen : int
            Redis transport: approximate cap on each node's stream.
        timeout : float
            XMPP transport: seconds to wait for the server on connecting
            and on each publication.
        node_max_items : str or int or None
            XMPP transport: items kept by the nodes this publisher creates
            (see :data:`~gwcelery.conf.lvalert_node_max_items`).
        """
        server = parse_url(url)
        if server.transport == 'redis':
            from .redis_streams import RedisPublisher
            return cls(RedisPublisher(url, maxlen=stream_maxlen), server)
        from .credentials import lookup
        from .xmpp import XMPPPublisher
        creds = lookup(server.host, username or server.username,
                       password or server.password)
        return cls(XMPPPublisher(server, creds, timeout=timeout,
                                 node_max_items=node_max_items), server)

    @classmethod
    def from_conf(cls, conf):
        """Connect to :data:`~gwcelery.conf.lvalert_url` with the
        credentials and limits of the configuration conf."""
        return cls.from_url(
            conf.lvalert_url,
            username=conf.get('lvalert_username'),
            password=conf.get('lvalert_password'),
            stream_maxlen=conf.get('lvalert_stream_maxlen', 10000),
            node_max_items=conf.get('lvalert_node_max_items', 'max'))

    def publish(self, node, alert):
        """Publish an alert on a node, creating the node if it is missing.

        Parameters
        ----------
        node : str
            The node (``cbc_gstlal``, ``superevent``, …).
        alert : dict
            The alert; it must be serializable as JSON.

        Returns
        -------
        str
            The item id the server holds it under.
        """
        return self.publish_raw(node, alerts.encode(alert))

    def publish_raw(self, node, payload):
        """Publish a payload as it is, without checking that it is JSON.

        For tests of how listeners cope with malformed messages, and for
        replaying captured payloads.
        """
        if self._closed:
            raise RuntimeError('this publisher is closed')
        if not node or not isinstance(node, str):
            raise ValueError(f'invalid node name {node!r}')
        return self._transport.publish(node, payload)

    def create_node(self, node):
        """Create a node if it does not exist."""
        self._transport.create_node(node)

    def nodes(self):
        """Names of the nodes on the server."""
        return self._transport.nodes()

    def close(self):
        """Close the connection. Further publications raise."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f'<Publisher {self.server.redacted}>'
