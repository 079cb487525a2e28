"""VOEvents out: the broadcaster of the voevent worker and :func:`send`.

The worker that consumes the ``voevent`` queue (``gwcelery worker -Q voevent
-P solo``) runs a :class:`~gwcelery.vtp.server.Broadcaster` in a thread,
started and stopped with the worker by a worker bootstep; GCN subscribes to
it. :func:`send` runs in that worker's process, so it reaches the
broadcaster's live connections; a worker that does not consume ``voevent``
starts no broadcaster. The subscribers show under ``voevent_broadcaster`` in
``gwcelery inspect stats``.

Once per IVORN: :func:`send` with ``once=True`` records in Redis that it is
sending a notice, then what the subscribers answered, under the notice's
IVORN; a notice whose IVORN was sent already is not broadcast again, and
its recorded result is returned instead. Since the one voevent worker runs
one task at a time, two sends of one IVORN never overlap. A worker killed
during a broadcast leaves the mark without a result: the task comes back
(acknowledged late) and broadcasts the notice again, with a warning, since
it cannot know whether the packets left before the kill (at least once,
never lost; receivers recognize the repeat by its IVORN).
"""
import json
import logging
import time

from celery import bootsteps

from .. import app
from ..claims import redis_client
from ..util.xml import parse, voevent_ivorn
from ..vtp.server import Broadcaster, BroadcasterThread, NoSubscribers

__all__ = ('send', 'QUEUE', 'SENT_KEY')

log = logging.getLogger(__name__)

QUEUE = 'voevent'
"""The queue whose worker holds the broadcaster."""

#: The broadcaster of this process, if it runs one.
_broadcaster = None

SENT_KEY = 'gwcelery:voevent:sent:'
"""Prefix of the Redis hashes that record, per IVORN, the notices sent
with ``once=True``: ``sending`` (UNIX time of the last attempt) and
``result`` (the JSON result)."""

#: Seconds a record is kept.
SENT_TTL = 30 * 86400


def _make_broadcaster(conf):
    return Broadcaster(
        conf.voevent_broadcaster_address,
        conf.voevent_broadcaster_whitelist,
        ivorn='ivo://gwcelery/broadcaster',
        iamalive_interval=conf.voevent_broadcaster_iamalive_interval,
        ack_timeout=conf.voevent_broadcaster_ack_timeout,
        write_timeout=conf.voevent_broadcaster_ack_timeout,
        max_packet_size=conf.vtp_max_packet_size)


class BroadcasterStep(bootsteps.StartStopStep):
    """Worker bootstep: run the VOEvent broadcaster in the voevent worker."""

    label = 'VOEvent broadcaster'

    def __init__(self, worker, **kwargs):
        self.thread = None

    def include_if(self, worker):
        selected = worker.app.amqp.queues.consume_from
        return bool(selected) and QUEUE in selected

    def start(self, worker):
        global _broadcaster
        conf = worker.app.conf
        thread = BroadcasterThread(_make_broadcaster(conf))
        try:
            thread.start()
        except OSError as e:
            raise RuntimeError(
                'The VOEvent broadcaster cannot listen on '
                f'{conf.voevent_broadcaster_address} '
                f'(voevent_broadcaster_address): {e}') from e
        self.thread = _broadcaster = thread

    def stop(self, worker):
        global _broadcaster
        if self.thread is not None:
            self.thread.stop()
            self.thread = None
            _broadcaster = None

    shutdown = terminate = stop

    def info(self, worker):
        if self.thread is None:
            return {}
        return {'voevent_broadcaster': self.thread.info()}


app.steps['worker'].add(BroadcasterStep)


# acks_late: a notice whose worker is killed mid-send is delivered again
# (at worst a duplicate with the same IVORN, which receivers can recognize)
# rather than lost.
@app.task(bind=True, queue=QUEUE, shared=False, ignore_result=False,
          acks_late=True, autoretry_for=(NoSubscribers,), retry_backoff=1,
          retry_backoff_max=60, retry_jitter=False, max_retries=None)
def send(self, payload, once=False):
    """Broadcast a VOEvent to every subscriber of the broadcaster.

    While nobody is subscribed, the task retries with back-off (1, 2, 4 …
    up to 60 s between attempts, without limit), so a notice sent during a
    disconnection goes out on reconnection.

    Parameters
    ----------
    payload : bytes
        The VOEvent XML.
    once : bool
        Broadcast it only if its IVORN was not sent with ``once=True``
        before (see the module's documentation).

    Returns
    -------
    dict
        ``ivorn``, ``acked`` (subscribers that acked), ``unacked``,
        ``ack_latency`` (seconds, per subscriber that acked) and
        ``sent_at`` (UNIX time of the broadcast); with ``once=True`` and a
        notice sent before, that broadcast's result with ``repeated``
        true.

    Raises
    ------
    RuntimeError
        If this process runs no broadcaster (the task must run in the
        ``voevent`` worker with the solo or threads pool).
    """
    if _broadcaster is None:
        raise RuntimeError(
            'This process runs no VOEvent broadcaster: voevent.send must run '
            'in "gwcelery worker -Q voevent -P solo"')
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    key = None
    if once:
        ivorn = voevent_ivorn(parse(payload, app.conf.vtp_max_packet_size))
        key = SENT_KEY + ivorn
        recorded = redis_client().hgetall(key)
        if b'result' in recorded:
            log.info('%s was sent already; not sending it again', ivorn)
            return {**json.loads(recorded[b'result']), 'repeated': True}
        if b'sending' in recorded:
            log.warning('%s may have gone out already: the worker stopped '
                        'while sending it; sending it again', ivorn)
        redis_client().hset(key, 'sending', repr(time.time()))
        redis_client().expire(key, SENT_TTL)
    sent_at = time.time()
    try:
        result = _broadcaster.send(payload)
    except NoSubscribers:
        if key:  # nothing went out
            redis_client().hdel(key, 'sending')
        log.warning('No subscriber to send to; retrying (attempt %d)',
                    self.request.retries + 1)
        raise
    result['sent_at'] = sent_at
    if key:
        redis_client().hset(key, 'result', json.dumps(result))
    return result
