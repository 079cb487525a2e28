"""The embedded LVAlert transport: Redis Streams (``redis://``, ``rediss://``).

For a deployment with no XMPP server: the alerts travel through the
deployment's own Redis. ``redis://HOST[:PORT][/DB]``; ``rediss://`` is the
same over TLS.

Layout
    Each node is a stream under the key ``lvalert:<node>``; an item is a
    stream entry whose field ``alert`` holds the JSON text, and the entry
    id is the item id. The set ``lvalert:nodes`` names the nodes that
    exist.
Delivery: at least once
    The listener reads through a consumer group (``gwcelery``) with one
    fixed consumer name, and acknowledges an entry only after its callback
    returned. An entry whose callback raised (dispatching failed: the
    broker is unreachable) stays pending and is offered again after a
    pause, with back-off. An entry whose dispatch finished just before a
    crash, but whose acknowledgement did not, is dispatched again.
Order
    Entries of one node are delivered in the order they were published
    (after a restart, those left pending first); there is no order across
    nodes.
Recovery after an outage
    Entries delivered but not acknowledged (the listener died) stay in the
    group's pending list and are read again, first, when a listener
    starts; entries published while no listener ran wait in the stream;
    while Redis itself is unreachable the listener retries with back-off
    up to ``max_backoff`` (30 s) and then continues where the group left
    off. So a listener stopped, killed or cut off from Redis misses
    nothing that is still in the stream.
Subscription
    A node's group is created, at the end of its stream, the first time a
    listener subscribes to it: like an XMPP subscription, it receives what
    is published from then on.
Limits
    Streams are capped at about :data:`~gwcelery.conf.lvalert_stream_maxlen`
    entries (10,000; Redis trims whole blocks, so a few more may remain):
    an entry trimmed before it was read is lost, and this is logged.
    Redis itself imposes no item size below 512 MB; listeners refuse
    payloads over :data:`~gwcelery.conf.lvalert_max_payload`.
"""
import logging
import time

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .base import Transport

__all__ = ('stream_key', 'RedisTransport')

log = logging.getLogger(__name__)

PREFIX = 'lvalert:'
NODES_KEY = 'lvalert:nodes'
FIELD = b'alert'
DEFAULT_GROUP = 'gwcelery'
#: The one consumer of the group. Only one listener runs at a time (it is
#: an eternal task), and a fixed name lets a new listener take over the
#: entries that a dead one had read but not acknowledged.
CONSUMER = 'listener'


def stream_key(node):
    """Redis key of a node's stream."""
    return PREFIX + node


class RedisTransport(Transport):
    """LVAlert on Redis Streams.

    Thread safe: redis-py's connection pool hands each concurrent caller
    its own connection and reuses them.

    Parameters
    ----------
    server : .url.ServerURL
        ``redis://HOST[:PORT][/DB]``.
    maxlen : int
        Approximate cap on each stream's length.
    group : str
        Consumer group of the listener: listeners that must each see every
        item (a benchmark beside the deployment, say) use different groups.
    block : float
        Longest wait for new entries (seconds); also how often
        ``should_stop`` is checked.
    batch : int
        Most entries read at once.
    max_backoff : float
        Longest pause between attempts to reach an unreachable Redis.
    """

    name = 'Redis Streams'
    default_port = 6379

    def __init__(self, server, *, maxlen=10000, group=DEFAULT_GROUP,
                 block=0.5, batch=100, max_backoff=30.0):
        super().__init__(server)
        self.maxlen = maxlen
        self.group = group
        self.block_ms = max(1, int(block * 1000))
        self.batch = batch
        self.max_backoff = max_backoff
        # The socket timeout must outlast a blocking read; it also bounds
        # a publication to a server that accepts connections but hangs.
        self.client = redis.Redis.from_url(
            server.url, socket_timeout=block + 10, socket_connect_timeout=5,
            health_check_interval=30)

    @classmethod
    def from_conf(cls, conf, server, **options):
        """The transport with :data:`~gwcelery.conf.lvalert_stream_maxlen`."""
        options.setdefault('maxlen', conf.get('lvalert_stream_maxlen', 10000))
        return cls(server, **options)

    # -- publishing ------------------------------------------------------

    def create_node(self, node):
        """Declare a node (its stream appears with its first item)."""
        self.client.sadd(NODES_KEY, node)

    def _publish(self, node, payload):
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(stream_key(node), {FIELD: payload},
                  maxlen=self.maxlen, approximate=True)
        pipe.sadd(NODES_KEY, node)
        entry_id, _ = pipe.execute()
        return entry_id.decode()

    def nodes(self):
        return sorted(n.decode() for n in self.client.smembers(NODES_KEY))

    def _close(self):
        self.client.close()

    # -- listening -------------------------------------------------------

    def _ensure_groups(self, nodes):
        for node in nodes:
            try:
                self.client.xgroup_create(
                    stream_key(node), self.group, id='$', mkstream=True)
                log.info('Created consumer group %s on node %s',
                         self.group, node)
            except ResponseError as e:
                if 'BUSYGROUP' not in str(e):
                    raise
        self.client.sadd(NODES_KEY, *nodes)

    def _deliver(self, response, callback):
        """Run the callback on each entry and acknowledge it; an exception
        from the callback propagates and leaves the entry pending."""
        count = 0
        for key, entries in response:
            node = key.decode()[len(PREFIX):]
            for entry_id, fields in entries:
                item_id = entry_id.decode()
                if fields is None or FIELD not in fields:
                    # XREADGROUP returns trimmed pending entries as nil.
                    log.warning('Entry %s of node %s was trimmed from its '
                                'stream before it could be processed; it '
                                'is lost', item_id, node)
                else:
                    callback(node, item_id, fields[FIELD])
                self.client.xack(key, self.group, entry_id)
                count += 1
        return count

    def _pending(self, streams, callback, should_stop):
        # Entries a previous listener read but did not acknowledge.
        while not should_stop():
            response = self.client.xreadgroup(
                self.group, CONSUMER, {k: '0' for k in streams},
                count=self.batch)
            if not any(entries for _, entries in response):
                return
            if self._deliver(response, callback):
                log.info('Processed entries left pending by a previous run')

    def listen(self, nodes, callback, should_stop):
        """Deliver entries until ``should_stop()`` returns true; see
        :meth:`.Transport.listen`. Payloads are :class:`bytes`."""
        nodes = sorted(set(nodes))
        streams = [stream_key(n) for n in nodes]
        self.ready.clear()
        backoff = 0.5
        while not should_stop():
            try:
                if not nodes:
                    self.ready.set()
                    time.sleep(self.block_ms / 1000)
                    continue
                self._ensure_groups(nodes)
                self._pending(streams, callback, should_stop)
                self.ready.set()
                backoff = 0.5
                while not should_stop():
                    response = self.client.xreadgroup(
                        self.group, CONSUMER, {k: '>' for k in streams},
                        count=self.batch, block=self.block_ms)
                    self._deliver(response, callback)
            except (ConnectionError, TimeoutError) as e:
                self.ready.clear()
                log.warning('LVAlert Redis at %s unreachable (%s); retrying '
                            'in %.1f s', self.server.redacted, e, backoff)
            except ResponseError as e:
                if 'NOGROUP' in str(e):
                    # The stream or group was deleted under us: recreate.
                    log.warning('Consumer group vanished (%s); recreating', e)
                    continue
                log.exception('Redis refused an LVAlert command')
            except Exception:
                # From the callback: the entry stays pending.
                log.exception('Processing an LVAlert entry failed; it stays '
                              'pending and will be retried in %.1f s',
                              backoff)
            _sleep_unless(should_stop, backoff)
            backoff = min(backoff * 2, self.max_backoff)


def _sleep_unless(should_stop, seconds):
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0, deadline - time.monotonic())))
