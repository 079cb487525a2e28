"""LVAlert in: the ``@lvalert.handler`` registry and the listener task.

Handlers are Celery tasks registered by node name; each receives the
decoded alert (a :class:`dict`)::

    from gwcelery.tasks import lvalert

    @lvalert.handler('cbc_gstlal', 'cbc_pycbc', queue='superevent')
    def handle_cbc(alert):
        ...

:func:`listen` is an eternal task: one copy runs in the deployment,
connected to :data:`~gwcelery.conf.lvalert_url` over the transport its
scheme names (see :mod:`gwcelery.lvalert.transport`). It subscribes to
exactly the nodes that handlers are registered for, and for each item
received

* drops it with a warning if it is larger than
  :data:`~gwcelery.conf.lvalert_max_payload`, not JSON or not a JSON
  object;
* ignores it with a warning if it is for a node without handlers;
* ignores it with a log line if its ``object.links.self`` (or
  ``object.self``) is not under :data:`~gwcelery.conf.gracedb_url`;
* otherwise sends it to every handler of its node, as a Celery group.

None of these stops the listener.
"""
import time

from celery.utils.log import get_task_logger

from .. import app
from ..eternal import EternalTask
from ..lvalert import alerts, transport
from .core import DispatchHandler

__all__ = ('LVAlertHandler', 'handler', 'listen')

log = get_task_logger(__name__)

#: Seconds between attempts to start a listener whose configuration is bad.
CONFIG_RETRY_INTERVAL = 30.0


class LVAlertHandler(DispatchHandler):
    """Handlers of LVAlert messages, keyed by node name.

    :meth:`dispatch` takes the node and the alert, either decoded (a
    :class:`dict`) or as the received JSON text.
    """

    key_name = 'node'

    def process_args(self, node, alert):
        if not isinstance(alert, dict):
            alert = alerts.decode(alert, app.conf.lvalert_max_payload)
        return node, (alert,), {}


handler = LVAlertHandler()
"""The registry: ``@handler('node', ..., **task_options)``."""


def _receive(node, item_id, payload):
    """Check one received item and dispatch it. Raises only if the
    dispatch itself fails (the broker is unreachable), so that transports
    that can keep the item offer it again."""
    conf = app.conf
    try:
        alert = alerts.decode(payload, conf.lvalert_max_payload)
    except alerts.BadAlert as e:
        log.warning('Dropping LVAlert item %s on node %s: %s',
                    item_id, node, e)
        return
    if node not in handler:
        log.warning('Ignoring LVAlert item %s on node %s: no handler is '
                    'registered for that node', item_id, node)
        return
    if not alerts.is_from(alert, conf.gracedb_url):
        log.info('Ignoring LVAlert item %s on node %s: its object %s is not '
                 'in our GraceDb %s', item_id, node,
                 alerts.self_link(alert), conf.gracedb_url)
        return
    log.info('LVAlert item %s on node %s: %s %s', item_id, node,
             alert.get('alert_type'), alert.get('uid'))
    handler.dispatch(node, alert)


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
    try:
        lvalert.listen(nodes, _receive, self.is_aborted)
    finally:
        lvalert.close()
