"""The local GCN feed: a VTP server for notices queued in Redis.

It stands in for GCN's VOEvent server in the local deployment. It is a
:class:`~gwcelery.vtp.server.Broadcaster` (any number of listeners, acks,
iamalive) whose notices come from a Redis list that ``gwcelery gcn replay``
appends to.

Why a Redis list: the feed is a process of its own, and Redis is already
the one service every gwcelery process reaches. A list keeps what was queued
while the feed was down or while no listener was connected, so a replayed
notice is not lost; it needs no extra port to open and secure. The feed
takes a notice only once a listener is connected, moves it to a second list
while sending, and deletes it there once sent (after waiting for acks), so a
feed killed while sending sends it again when it restarts.

Notices are stored as their raw XML bytes, never pickled.

With ``upstream``, the feed also subscribes to a VOEvent broadcaster (in
the local deployment, the voevent worker's: the
:data:`~gwcelery.conf.gcn_feed_upstream_address` setting) as GCN
subscribes to ours, and queues every notice it receives on the same list,
before acknowledging it, so that our own notices come back to the GCN
listener as GCN echoes them.
"""
import asyncio
import logging
from urllib.parse import urlsplit

import redis
import redis.asyncio
from ..util.xml import XMLError, parse, voevent_ivorn
from .client import subscribe
from .server import NoSubscribers

__all__ = ('QUEUE_KEY', 'SENDING_KEY', 'check_notice', 'enqueue', 'run')

log = logging.getLogger(__name__)

QUEUE_KEY = 'gwcelery:gcn:feed'
"""Redis list of notices waiting to be served, oldest first."""

SENDING_KEY = 'gwcelery:gcn:feed:sending'
"""Redis list holding the notice being served."""


def check_notice(payload, max_size):
    """Parse a notice safely; return its IVORN.

    Raises
    ------
    gwcelery.util.xml.XMLError
        If it is not a VOEvent with an IVORN, or is unsafe.
    """
    return voevent_ivorn(parse(payload, max_size))


def enqueue(redis_url, payloads):
    """Append notices to the feed's queue.

    Returns
    -------
    int
        Length of the queue afterwards.
    """
    client = redis.Redis.from_url(redis_url)
    try:
        return client.rpush(QUEUE_KEY, *payloads)
    finally:
        client.close()


def _where(url):
    # Host and port only: a Redis URL may carry a password.
    parts = urlsplit(url)
    return f'{parts.hostname}:{parts.port or 6379}'


async def _requeue_interrupted(client):
    # What a previous feed was sending when it stopped goes out first.
    count = 0
    while await client.lmove(SENDING_KEY, QUEUE_KEY, 'RIGHT', 'LEFT'):
        count += 1
    if count:
        log.info('Re-queued %d notice(s) that were being sent when the '
                 'feed last stopped', count)


async def _serve_one(client, broadcaster):
    payload = await client.blmove(QUEUE_KEY, SENDING_KEY, 1, 'LEFT', 'RIGHT')
    if payload is None:
        return
    try:
        result = await broadcaster.broadcast(payload)
    except NoSubscribers:
        # The last listener left between the check and the send.
        await client.lmove(SENDING_KEY, QUEUE_KEY, 'RIGHT', 'LEFT')
        return
    except XMLError as e:
        log.error('Dropping a queued notice of %d bytes that is not a valid '
                  'VOEvent: %s', len(payload), e)
    else:
        log.info('Served %s to %d listener(s)', result['ivorn'],
                 len(result['acked']) + len(result['unacked']))
    await client.lrem(SENDING_KEY, 1, payload)


async def run(broadcaster, redis_url, stopping=None, upstream=None):
    """Serve queued notices until ``stopping`` (an :class:`asyncio.Event`)
    is set.

    Redis being unreachable is logged and retried; the server keeps
    answering its listeners meanwhile.

    Parameters
    ----------
    broadcaster : gwcelery.vtp.server.Broadcaster
        The server the feed serves from.
    redis_url : str
        The Redis of the queue.
    stopping : asyncio.Event, optional
    upstream : str, optional
        ``'HOST:PORT'`` of a VOEvent broadcaster to subscribe to; what it
        sends is queued and served.
    """
    stopping = stopping or asyncio.Event()
    client = redis.asyncio.Redis.from_url(redis_url)
    await broadcaster.start()
    requeued = False
    subscriber = None
    if upstream:
        async def receive(payload):
            await client.rpush(QUEUE_KEY, payload)

        subscriber = asyncio.create_task(subscribe(
            upstream, receive, ivorn='ivo://gwcelery/local-feed',
            max_packet_size=broadcaster.max_packet_size,
            name='GCN feed subscriber'))
    try:
        while not stopping.is_set():
            waiter = asyncio.ensure_future(broadcaster.wait_for_subscriber())
            stopper = asyncio.ensure_future(stopping.wait())
            await asyncio.wait([waiter, stopper],
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if stopping.is_set():
                break
            try:
                if not requeued:
                    await _requeue_interrupted(client)
                    requeued = True
                await _serve_one(client, broadcaster)
            except redis.RedisError as e:
                log.error('Cannot reach Redis at %s: %s; retrying in 1 s',
                          _where(redis_url), e)
                await asyncio.sleep(1)
    finally:
        if subscriber is not None:
            subscriber.cancel()
            await asyncio.gather(subscriber, return_exceptions=True)
        await broadcaster.stop()
        await client.aclose()
