"""Which XMPP items a listener has delivered already, per node.

The XMPP listener fetches the items a server keeps on every node at each
session start; this store tells new items from those it delivered before.
In gwcelery it lives in the broker's Redis, so that it outlives the
listener process.
"""
import time

__all__ = ('SeenItems',)


class SeenItems:
    """Item ids already delivered, per node.

    Parameters
    ----------
    client : redis.Redis, optional
        Where to keep them; by default in this process's memory.
    namespace : str
        Key prefix, naming the server.
    keep : int
        Ids remembered per node (more than the server keeps per node).
    """

    def __init__(self, client=None, namespace='lvalert', keep=1000):
        self.client = client
        self.namespace = namespace
        self.keep = keep
        self._memory = {}
        self._baselines = set()

    def _key(self, node):
        return f'{self.namespace}:seen:{node}'

    def add(self, node, item_id):
        """Mark an id seen; true if it was not seen before."""
        if self.client is None:
            ids = self._memory.setdefault(node, {})
            if item_id in ids:
                return False
            ids[item_id] = None
            while len(ids) > self.keep:
                del ids[next(iter(ids))]
            return True
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self._key(node), {item_id: time.time()}, nx=True)
        pipe.zremrangebyrank(self._key(node), 0, -self.keep - 1)
        added, _ = pipe.execute()
        return bool(added)

    def discard(self, node, item_id):
        """Forget an id (its delivery failed; let recovery offer it)."""
        if self.client is None:
            self._memory.get(node, {}).pop(item_id, None)
        else:
            self.client.zrem(self._key(node), item_id)

    def has_baseline(self, node):
        """Whether the node was read before (see :meth:`set_baseline`)."""
        if self.client is None:
            return node in self._baselines
        return bool(self.client.sismember(
            f'{self.namespace}:baseline', node))

    def set_baseline(self, node, item_ids):
        """Mark the items found on a node at its first reading as seen."""
        for item_id in item_ids:
            self.add(node, item_id)
        if self.client is None:
            self._baselines.add(node)
        else:
            self.client.sadd(f'{self.namespace}:baseline', node)

    def close(self):
        """Close the Redis connection, if any."""
        if self.client is not None:
            self.client.close()
