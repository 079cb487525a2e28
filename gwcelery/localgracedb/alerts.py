"""LVAlert messages of the local GraceDb.

GraceDb announces every change on an LVAlert node: events on
``<group>_<pipeline>`` (lower case: ``cbc_gstlal``, ``external_fermi``),
superevents on ``superevent``, ``test_superevent`` or ``mdc_superevent``.
Each message is ``{"uid", "alert_type", "data", "object"}``: ``uid`` is the
event's graceid or the superevent's id, ``data`` what changed (the new
event, the log entry, the label, …) and ``object`` the whole event or
superevent after the change.

Messages are sent after the change's transaction has committed, so a
listener that reacts by reading the object sees the change. A failure to
publish is logged and does not fail the request: the change is already
stored and the client has a right to know that.
"""
import logging
import threading

__all__ = ('AlertSender', 'event_node', 'superevent_node')

log = logging.getLogger(__name__)

_SUPEREVENT_NODES = {'P': 'superevent', 'T': 'test_superevent',
                     'M': 'mdc_superevent'}


def event_node(group, pipeline):
    """LVAlert node of an event."""
    return f'{group}_{pipeline}'.lower()


def superevent_node(category):
    """LVAlert node of a superevent of a category code (P, T, M)."""
    return _SUPEREVENT_NODES[category]


class AlertSender:
    """Publishes alert messages through a publisher.

    Parameters
    ----------
    publisher : object or None
        Anything with ``publish(node, message)`` (such as
        :class:`gwcelery.lvalert.publisher.Publisher`), or ``None`` to
        only log messages at debug level.
    """

    def __init__(self, publisher=None):
        self.publisher = publisher
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def send(self, node, uid, alert_type, data, obj):
        """Publish one message; log, never raise, on failure."""
        message = {'uid': uid, 'alert_type': alert_type, 'data': data,
                   'object': obj}
        if self.publisher is None:
            log.debug('No LVAlert publisher: not sending %s %s on %s',
                      alert_type, uid, node)
            return
        # Publishers need not be thread-safe; the server's threads share one.
        with self._lock:
            try:
                self.publisher.publish(node, message)
                self.sent += 1
            except Exception as e:
                self.failed += 1
                log.error('Could not publish LVAlert %s for %s on node %s: '
                          '%s: %s', alert_type, uid, node,
                          type(e).__name__, e)

    def send_all(self, alerts):
        """Publish ``(node, uid, alert_type, data, object)`` tuples."""
        for alert in alerts:
            self.send(*alert)

    def close(self):
        if self.publisher is not None:
            try:
                self.publisher.close()
            except Exception:
                log.exception('Error closing the LVAlert publisher')
