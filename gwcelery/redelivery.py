"""Hand back, when a worker starts, what a killed worker of its queue held.

A task acknowledged late (``acks_late``) whose worker is SIGKILLed stays in
kombu's record of unacknowledged messages (the ``unacked`` hash, indexed by
delivery time in ``unacked_index``) until the ``visibility_timeout`` has
passed, ten minutes in gwcelery's configuration: only then does a restore
scan put it back on its queue. For a localization that is a preliminary
notice ten minutes late.

The deployment runs one worker per dedicated queue
(:data:`~gwcelery.conf.redelivery_sole_consumer_queues`). When such a
worker starts, any message of its queue that was delivered *before* it
started and is still unacknowledged was taken by a worker that is no longer
there, for it was the queue's only consumer. Such messages are put back at
the head of their queue at once (kombu's own ``restore_by_tag``, in a
transaction), with a log line. Messages delivered to the starting worker
itself are younger than its start and are left alone.

Should the assumption be wrong (two workers on one such queue, one of them
restarting), a message the other worker is running would run a second
time; the tasks on these queues are safe to run twice (claims, locks and
once-per-IVORN sends: see :doc:`/reliability`), so the cost is work, not a
duplicate alert. Only the Redis transport is supported; with any other,
nothing is done.
"""
import json
import logging
import time

from celery import signals

__all__ = ('hand_back',)

log = logging.getLogger(__name__)

# When this worker process began, before it could take any message.
_started = None


@signals.worker_init.connect
def _note_start(**kwargs):
    global _started
    _started = time.time()


def _queue_of(raw):
    """The queue that a record of the ``unacked`` hash was taken from."""
    try:
        payload, exchange, routing_key = json.loads(raw)
        info = payload['properties']['delivery_info']
        return info.get('routing_key') or routing_key
    except (TypeError, ValueError, KeyError):
        return None


def hand_back(app, queues, before):
    """Put back on their queues the unacknowledged messages of ``queues``
    delivered before the Unix time ``before``.

    Returns
    -------
    dict
        ``{queue: number of messages handed back}``.
    """
    handed = {}
    queues = set(queues)
    if not queues:
        return handed
    with app.connection_for_write() as conn:
        if conn.transport.driver_type != 'redis':
            return handed
        channel = conn.default_channel
        qos = channel.qos
        with channel.conn_or_acquire() as client:
            for tag in client.zrange(qos.unacked_index_key, 0, before,
                                     byscore=True):
                queue = _queue_of(client.hget(qos.unacked_key, tag))
                if queue in queues:
                    qos.restore_by_tag(tag, client, leftmost=True)
                    handed[queue] = handed.get(queue, 0) + 1
    return handed


@signals.worker_ready.connect
def _hand_back_on_start(sender, **kwargs):
    app = sender.app
    consumed = set(sender.app.amqp.queues.consume_from)
    queues = consumed & set(app.conf.redelivery_sole_consumer_queues or ())
    if not queues or _started is None:
        return
    try:
        handed = hand_back(app, queues, _started)
    except Exception as e:  # a worker must start even if this fails
        log.warning('Could not look for messages that a killed worker of '
                    '%s held: %s', ', '.join(sorted(queues)), e)
        return
    for queue, count in sorted(handed.items()):
        log.warning('Handed back %d message(s) of the %s queue that a killed '
                    'worker had taken and not acknowledged', count, queue)
