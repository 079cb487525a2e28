"""The embedded LVAlert transport: Redis Streams.

For a deployment with no XMPP server. Each node is a stream under the key
``lvalert:<node>``; an item is a stream entry whose field ``alert`` holds
the JSON text, and the entry id is the item id. The set ``lvalert:nodes``
names the nodes that exist.

The listener reads through a consumer group (``gwcelery``) with one fixed
consumer name, and acknowledges an entry only after its callback returned.
Entries delivered but not acknowledged (the listener died, or dispatching
failed) stay in the group's pending list and are read again, first, when a
listener starts; entries published while no listener ran wait in the
stream. Delivery is therefore at least once: an entry whose dispatch
finished just before a crash, but whose acknowledgement did not, is
dispatched again.

A node's group is created, at the end of its stream, the first time a
listener subscribes to it: like an XMPP subscription, it receives what is
published from then on. Streams are capped at about
:data:`~gwcelery.conf.lvalert_stream_maxlen` entries (Redis trims whole
blocks, so a few more may remain); an entry trimmed before it was read is
lost, and this is logged.
"""
import logging
import time

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .transports import parse_url

__all__ = ('stream_key', 'RedisPublisher', 'RedisListener')

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


class RedisPublisher:
    """Publishes to node streams. Thread safe: redis-py's connection pool
    hands each concurrent caller its own connection and reuses them.

    Parameters
    ----------
    url : str
        ``redis://HOST[:PORT][/DB]``.
    maxlen : int
        Approximate cap on each stream's length.
    """

    def __init__(self, url, maxlen=10000):
        self.client = redis.Redis.from_url(url, health_check_interval=30)
        self.maxlen = maxlen

    def create_node(self, node):
        """Declare a node (its stream appears with its first item)."""
        self.client.sadd(NODES_KEY, node)

    def publish(self, node, payload):
        """Append a payload (JSON text) to the node's stream.

        Returns
        -------
        str
            The item id (the stream entry id).
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(stream_key(node), {FIELD: payload},
                  maxlen=self.maxlen, approximate=True)
        pipe.sadd(NODES_KEY, node)
        entry_id, _ = pipe.execute()
        return entry_id.decode()

    def nodes(self):
        """Names of the nodes that exist."""
        return sorted(n.decode() for n in self.client.smembers(NODES_KEY))

    def close(self):
        self.client.close()


class RedisListener:
    """Reads node streams through a consumer group.

    Parameters
    ----------
    url : str
        ``redis://HOST[:PORT][/DB]``.
    group : str
        Consumer group name: listeners that must each see every item (a
        benchmark beside the deployment, say) use different groups.
    block : float
        Longest wait for new entries (seconds); also how often
        ``should_stop`` is checked.
    batch : int
        Most entries read at once.
    max_backoff : float
        Longest pause between attempts to reach an unreachable Redis.
    """

    def __init__(self, url, group=DEFAULT_GROUP, block=0.5, batch=100,
                 max_backoff=30.0):
        self.url = url
        self.group = group
        self.block_ms = max(1, int(block * 1000))
        self.batch = batch
        self.max_backoff = max_backoff
        # The socket timeout must outlast a blocking read.
        self.client = redis.Redis.from_url(
            url, socket_timeout=block + 10, socket_connect_timeout=5)
        self.ready = False
        """True once every node's group exists (for tests and benchmarks)."""

    def close(self):
        self.client.close()

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

    def run(self, nodes, callback, should_stop):
        """Deliver entries until should_stop() returns true.

        Parameters
        ----------
        nodes : iterable of str
            Nodes to read.
        callback : callable
            ``callback(node, item_id, payload)``; payload is the JSON text
            as :class:`bytes`. If it raises, the entry stays pending and is
            offered again after a pause.
        should_stop : callable
            Checked at least every ``block`` seconds.
        """
        nodes = sorted(set(nodes))
        streams = [stream_key(n) for n in nodes]
        backoff = 0.5
        while not should_stop():
            try:
                if not nodes:
                    self.ready = True
                    time.sleep(self.block_ms / 1000)
                    continue
                self._ensure_groups(nodes)
                self._pending(streams, callback, should_stop)
                self.ready = True
                backoff = 0.5
                while not should_stop():
                    response = self.client.xreadgroup(
                        self.group, CONSUMER, {k: '>' for k in streams},
                        count=self.batch, block=self.block_ms)
                    self._deliver(response, callback)
            except (ConnectionError, TimeoutError) as e:
                log.warning('LVAlert Redis at %s unreachable (%s); retrying '
                            'in %.1f s', _redact(self.url), e, backoff)
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


def _redact(url):
    return parse_url(url).redacted

