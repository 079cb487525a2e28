"""The superevent manager's intake: alerts kept in Redis until applied.

Celery's Redis transport can lose a message outright: a worker pops it from
its queue (``BRPOP``) and records it as unacknowledged only afterwards, so a
worker killed in between takes the message with it (see
:doc:`/reliability`). The superevent manager therefore does not rely on its
Celery messages to carry alerts. Whoever sends it an alert first appends the
alert to a Redis list, the *intake*; the Celery message that follows is only
a wake-up call, a *kick*. The manager reads the alerts waiting in the intake,
applies them, and only then removes them. A lost kick delays alerts until
the next kick; it loses none.

Kicks are coalesced: the first alert that finds no kick pending sends one,
and alerts appended before that kick's pass begins ride on it. A pass clears
the mark when it begins, so an alert appended after that point sends a new
kick. The mark expires after :data:`KICK_TTL_MS` in case its kick never
arrives.

Only the manager removes entries, and only those it has read: removal pops
the head of the list while it still holds the entries read, so nothing
appended meanwhile, and nothing another reader has already removed, is
lost.
"""
import json

__all__ = ('Intake', 'PENDING_KEY', 'KICK_KEY', 'KICK_TTL_MS')

#: Redis list of the alerts waiting for the manager (JSON text, oldest
#: first).
PENDING_KEY = 'superevents:pending'

#: Redis key that marks a kick as sent and its pass not yet begun.
KICK_KEY = 'superevents:kick'

#: Milliseconds that the kick mark lives, so that an alert appended this
#: long after a kick that was lost sends another.
KICK_TTL_MS = 5000

# Append, then mark a kick as pending; 1 if the caller must send the kick.
_PUSH = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""

# Pop the head of the list for as long as it holds the entries given, in
# order; return how many were popped.
_REMOVE = """
local n = 0
for i = 1, #ARGV do
    if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[i] then
        break
    end
    redis.call('LPOP', KEYS[1])
    n = n + 1
end
return n
"""


class Intake:
    """The intake list on one Redis server.

    Parameters
    ----------
    client : redis.Redis
        Where the list lives (the broker's Redis).
    key, kick_key : str
        Redis keys of the list and of the kick mark.
    """

    def __init__(self, client, key=PENDING_KEY, kick_key=KICK_KEY):
        self.client = client
        self.key = key
        self.kick_key = kick_key
        self._push = client.register_script(_PUSH)
        self._remove = client.register_script(_REMOVE)

    def push(self, alert):
        """Append an alert.

        Returns
        -------
        bool
            Whether the caller must send a kick (no kick is pending).
        """
        text = json.dumps(alert, separators=(',', ':'))
        return bool(self._push(keys=[self.key, self.kick_key],
                               args=[text, KICK_TTL_MS]))

    def begin_pass(self):
        """Clear the kick mark: alerts appended from now on send a kick."""
        self.client.delete(self.kick_key)

    def forget_kick(self):
        """Clear the kick mark after a kick could not be sent."""
        self.client.delete(self.kick_key)

    def read(self, limit):
        """The oldest entries, at most ``limit``, as raw bytes."""
        return self.client.lrange(self.key, 0, limit - 1)

    def remove(self, entries):
        """Remove entries returned by :meth:`read` from the head of the
        list; return how many were removed."""
        if not entries:
            return 0
        return int(self._remove(keys=[self.key], args=list(entries)))

    def __len__(self):
        return int(self.client.llen(self.key))

    def uids(self):
        """Uids of every waiting alert (for the reconciliation)."""
        found = set()
        for raw in self.client.lrange(self.key, 0, -1):
            alert = decode(raw)
            if isinstance(alert, dict) and isinstance(alert.get('uid'), str):
                found.add(alert['uid'])
        return found


def decode(raw):
    """An entry's alert, or ``None`` if it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None
