"""The interface that every LVAlert transport implements.

A transport is one LVAlert server, seen from gwcelery: it publishes items
on nodes, lists and creates nodes, and listens to nodes, handing every item
it receives to a callback. The same object may do both; it opens the
connections it needs when it first needs them and closes them in
:meth:`Transport.close`.
"""
import threading

from .. import alerts

__all__ = ('Transport',)


class Transport:
    """Base class of the transports.

    Subclasses implement :meth:`listen`, :meth:`create_node`,
    :meth:`nodes`, ``_publish`` and ``_close``, and document in
    their module what delivery, order, recovery after an outage and size
    limits they guarantee.

    Parameters
    ----------
    server : .url.ServerURL
        The server.
    """

    name = 'LVAlert'
    """Name of the transport, for log messages."""

    default_port = None
    """Port used when the URL names none."""

    def __init__(self, server):
        self.server = server
        self.ready = threading.Event()
        """Set once :meth:`listen` has subscribed to its nodes (tests and
        benchmarks wait for it)."""
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf, server, **options):
        """The transport to server with the settings of conf.

        Subclasses read the settings they need (credentials, limits);
        options, the constructor's keyword arguments, win over them.
        """
        return cls(server, **options)

    @property
    def address(self):
        """``(host, port)`` to connect to."""
        return self.server.host, self.server.port or self.default_port

    # -- listening -------------------------------------------------------

    def listen(self, nodes, callback, should_stop):
        """Receive items until ``should_stop()`` returns true.

        Outages of the server are logged and waited out: this returns
        only when asked to.

        Parameters
        ----------
        nodes : iterable of str
            The nodes to subscribe to.
        callback : callable
            ``callback(node, item_id, payload)`` for each item received;
            payload is the item's text (:class:`str` or :class:`bytes`),
            or ``None`` for an item without one. If it raises, the item
            counts as not processed: transports that can, offer it again.
        should_stop : callable
            Polled at least every second.
        """
        raise NotImplementedError

    # -- publishing ------------------------------------------------------

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
            The item id the server holds it under. It returns only once
            the server has the item; failures raise.
        """
        return self.publish_raw(node, alerts.encode(alert))

    def publish_raw(self, node, payload):
        """Publish a payload as it is, without checking that it is JSON.

        For tests of how listeners cope with malformed messages, and for
        replaying captured payloads. Safe to call from several threads.
        """
        if self._closed:
            raise RuntimeError('this LVAlert transport is closed')
        if not node or not isinstance(node, str):
            raise ValueError(f'invalid node name {node!r}')
        return self._publish(node, payload)

    def _publish(self, node, payload):
        raise NotImplementedError

    def create_node(self, node):
        """Create a node if it does not exist."""
        raise NotImplementedError

    def nodes(self):
        """Sorted names of the nodes on the server."""
        raise NotImplementedError

    # -- life cycle ------------------------------------------------------

    def close(self):
        """Close the connections; further publications raise. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._close()

    def _close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f'<{type(self).__name__} {self.server.redacted}>'
