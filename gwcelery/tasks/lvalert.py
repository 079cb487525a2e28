"""LVAlert in: the ``@lvalert.handler`` registry and the listener task.

Handlers are Celery tasks registered by node name; each receives the
decoded alert (a :class:`dict`)::

    from gwcelery.tasks import lvalert

    @lvalert.handler('cbc_gstlal', 'cbc_pycbc', queue='superevent')
    def handle_cbc(alert):
        ...

The registry, :data:`handler`, checks every alert it is given, whoever
calls :meth:`~gwcelery.tasks.core.DispatchHandler.dispatch` (the listener,
a test, a replay):

* it drops the alert with a warning if it is larger than
  :data:`~gwcelery.conf.lvalert_max_payload`, not JSON or not a JSON
  object;
* it ignores it with a warning if its node has no handlers;
* it ignores it with a log line if its ``object.links.self`` (or
  ``object.self``) is not under :data:`~gwcelery.conf.gracedb_url`;
* otherwise it sends it to every handler of its node, as a Celery group.

None of these raises.

:func:`listen` is an eternal task: one copy runs in the deployment,
connected to :data:`~gwcelery.conf.lvalert_url` over the transport its
scheme names (see :mod:`gwcelery.lvalert.transport`). It subscribes to
exactly the nodes that handlers are registered for and hands every item
received to the registry. While subscribed, it records the nodes in Redis
(:mod:`gwcelery.status`, name ``lvalert``) for the health check.
"""
import logging
import time

from celery.utils.log import get_task_logger

from .. import app, status
from ..eternal import EternalTask
from ..lvalert import alerts, transport
from .core import DispatchHandler, Drop

__all__ = ('LVAlertHandler', 'handler', 'listen')

log = get_task_logger(__name__)

#: Seconds between attempts to start a listener whose configuration is bad.
CONFIG_RETRY_INTERVAL = 30.0


class LVAlertHandler(DispatchHandler):
    """Handlers of LVAlert messages, keyed by node name.

    :meth:`~gwcelery.tasks.core.DispatchHandler.dispatch` takes the node
    and the alert, either decoded (a
    :class:`dict`) or as the received payload (JSON text, :class:`str` or
    :class:`bytes`), and optionally the ``item_id`` the transport gave it,
    for log messages. It decodes the payload, and drops it, with a log
    line, if it is not an alert, if its node has no handler, or if it is
    about an object of another GraceDb than
    :data:`~gwcelery.conf.gracedb_url`.
    """

    key_name = 'node'

    def process_args(self, node, alert, item_id=None):
        conf = app.conf
        what = (f'LVAlert item {item_id} on node {node}' if item_id
                else f'LVAlert alert on node {node}')
        if not isinstance(alert, dict):
            try:
                alert = alerts.decode(alert, conf.lvalert_max_payload)
            except alerts.BadAlert as e:
                raise Drop(f'Dropping {what}: {e}') from None
        if node not in self:
            raise Drop(f'Ignoring {what}: no handler is registered for '
                       'that node')
        # Fields of a received alert are quoted shortened: they may be huge.
        if not alerts.is_from(alert, conf.gracedb_url):
            raise Drop(f'Ignoring {what}: its object '
                       f'{alerts.self_link(alert):.200} is not in our GraceDb '
                       f'{conf.gracedb_url}', logging.INFO)
        log.info('%s: %.100s %.100s', what, alert.get('alert_type'),
                 alert.get('uid'))
        return node, (alert,), {}


handler = LVAlertHandler()
"""The registry, used as ``@handler('node', ..., **task_options)``."""


def _receive(node, item_id, payload):
    """The transport's callback. Raises only if the dispatch itself fails
    (the broker is unreachable), so that transports that can keep the item
    offer it again."""
    handler.dispatch(node, payload, item_id=item_id)


@app.task(base=EternalTask, bind=True, shared=False, ignore_result=True)
def listen(self):
    """Receive LVAlert messages and dispatch them to their handlers."""
    nodes = sorted(handler)
    try:
        lvalert = transport.from_conf(app.conf)
    except (ValueError, RuntimeError) as e:
        # A configuration problem (URL, credentials): say so once, then
        # wait before beat starts the task again, rather than every second.
        log.error('LVAlert listener cannot start: %s', e)
        deadline = time.monotonic() + CONFIG_RETRY_INTERVAL
        while not self.is_aborted() and time.monotonic() < deadline:
            time.sleep(0.5)
        return
    log.info('LVAlert listener on %s (%s transport) for nodes: %s',
             lvalert.server.redacted, lvalert.name, ', '.join(nodes) or 'none')
    recorder = status.Recorder('lvalert', app.conf)

    def should_stop():
        # Polled at least every second: keep the health record current.
        if lvalert.ready.is_set():
            recorder.update(nodes=nodes, server=lvalert.server.redacted,
                            transport=lvalert.name)
        else:
            recorder.clear()
        return self.is_aborted()

    try:
        lvalert.listen(nodes, _receive, should_stop)
    finally:
        recorder.close()
        lvalert.close()
