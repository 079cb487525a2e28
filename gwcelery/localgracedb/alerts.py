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
slow, hung or stopped LVAlert server delays alerts, never HTTP responses:
a failure to publish never fails the request, since the change is already
stored and the client has a right to know that.

When the server cannot be reached (a connection error or a time-out: it is
restarting, say), the message is kept and tried again every second, and
the messages behind it wait, in order, for at most ``max_hold`` seconds
(one minute) from the first failure; one error line says so, and one line
says when publishing resumed and how long it was held. A message still
failing after that, or refused for any other reason, is dropped with an
error. On shutdown the thread gets a few seconds to send what is queued.
"""
import logging
import queue
import threading
import time

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
    max_hold : float
        Seconds for which a message that cannot reach the server is tried
        again, holding up those behind it.
    retry_interval : float
        Seconds between those attempts.
    """

    def __init__(self, publisher=None, max_queued=100000, max_hold=60.0,
                 retry_interval=1.0):
        self.publisher = publisher
        self.sent = 0
        self.failed = 0
        self.held = 0  # messages that were published after being held
        self.max_hold = max_hold
        self.retry_interval = retry_interval
        self._queue = queue.Queue(max_queued)
        self._closing = threading.Event()
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
            self._publish(*item)

    def _publish(self, node, message):
        """Publish one message, holding it while the server is
        unreachable (see the module's documentation)."""
        what = f'{message["alert_type"]} for {message["uid"]} on node {node}'
        first_failure = None
        while True:
            try:
                self.publisher.publish(node, message)
            except Exception as e:
                now = time.monotonic()
                if first_failure is None:
                    first_failure = now
                hold = (_unreachable(e) and not self._closing.is_set()
                        and now - first_failure < self.max_hold)
                if hold and first_failure == now:
                    log.error('Could not publish LVAlert %s: %s: %s; the '
                              'server seems unreachable: holding it and the '
                              '%d messages behind it, trying again every '
                              '%.0f s for up to %.0f s', what,
                              type(e).__name__, e, self.pending(),
                              self.retry_interval, self.max_hold)
                if hold:
                    self._closing.wait(self.retry_interval)
                    continue
                self.failed += 1
                held = (f' after holding it for {now - first_failure:.0f} s'
                        if now > first_failure else '')
                log.error('Could not publish LVAlert %s: %s: %s; dropping '
                          'it%s', what, type(e).__name__, e, held)
                return
            self.sent += 1
            if first_failure is not None:
                self.held += 1
                log.warning('LVAlert publishing resumed: %s published after '
                            'being held for %.1f s; %d messages queued',
                            what, time.monotonic() - first_failure,
                            self.pending())
            return

    def pending(self):
        """Messages queued and not yet handed to the publisher."""
        return self._queue.qsize()

    def close(self, timeout=5.0):
        """Send what is queued (for at most ``timeout`` seconds), then
        close the publisher."""
        # A message held for an unreachable server is not held any longer.
        self._closing.set()
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


def _unreachable(error):
    """Whether a publication failed because the server could not be
    reached (connection refused or lost, no answer in time), as opposed to
    being refused."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    try:  # The Redis transport's errors are not the built-in ones.
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:
        return False
    return isinstance(error, (RedisConnectionError, RedisTimeoutError))
