"""LVAlert messages of the local GraceDb.

GraceDb announces every change on an LVAlert node: events on
``<group>_<pipeline>`` (lower case: ``cbc_gstlal``, ``external_fermi``),
superevents on ``superevent``, ``test_superevent`` or ``mdc_superevent``.
Each message is ``{"uid", "alert_type", "data", "object"}``: ``uid`` is the
event's graceid or the superevent's id, ``data`` what changed (the new
event, the log entry, the label, …) and ``object`` the whole event or
superevent after the change.

Messages are sent after the change's transaction has committed, so a
listener that reacts by reading the object sees the change. They are
handed to one background thread that publishes them in order, so that a
slow or hung LVAlert server delays alerts, never HTTP responses. A failure
to publish is logged and does not fail the request: the change is already
stored and the client has a right to know that. On shutdown the thread
gets a few seconds to send what is queued.
"""
import logging
import queue
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
    """Publishes alert messages through a publisher, in order, from a
    background thread.

    Parameters
    ----------
    publisher : gwcelery.lvalert.transport.base.Transport or None
        The LVAlert transport (anything with ``publish(node, message)``
        and ``close()``), or ``None`` to only log messages at debug level.
    max_queued : int
        Messages waiting beyond this are dropped, with an error logged
        (the server's memory is not the place to wait for a dead server).
    """

    def __init__(self, publisher=None, max_queued=100000):
        self.publisher = publisher
        self.sent = 0
        self.failed = 0
        self._queue = queue.Queue(max_queued)
        self._thread = None
        if publisher is not None:
            self._thread = threading.Thread(
                target=self._run, name='lvalert-publisher', daemon=True)
            self._thread.start()

    def send(self, node, uid, alert_type, data, obj):
        """Queue one message for publication; never raises."""
        message = {'uid': uid, 'alert_type': alert_type, 'data': data,
                   'object': obj}
        if self.publisher is None:
            log.debug('No LVAlert publisher: not sending %s %s on %s',
                      alert_type, uid, node)
            return
        try:
            self._queue.put_nowait((node, message))
        except queue.Full:
            self.failed += 1
            log.error('LVAlert queue full: dropping %s alert for %s on %s',
                      alert_type, uid, node)

    def send_all(self, alerts):
        """Queue ``(node, uid, alert_type, data, object)`` tuples."""
        for alert in alerts:
            self.send(*alert)

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            node, message = item
            try:
                self.publisher.publish(node, message)
                self.sent += 1
            except Exception as e:
                self.failed += 1
                log.error('Could not publish LVAlert %s for %s on node %s: '
                          '%s: %s', message['alert_type'], message['uid'],
                          node, type(e).__name__, e)

    def pending(self):
        """Messages queued and not yet handed to the publisher."""
        return self._queue.qsize()

    def close(self, timeout=5.0):
        """Send what is queued (for at most ``timeout`` seconds), then
        close the publisher."""
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error('Closing with %d LVAlert messages unsent',
                          self.pending())
        if self.publisher is not None:
            try:
                self.publisher.close()
            except Exception:
                log.exception('Error closing the LVAlert publisher')
