"""Claims: do something for an event once, across workers and restarts.

A claim is a Redis key per (event, product) on the broker's Redis. A task
:func:`claim`\\ s it under its task id before the work and :func:`finish`\\ es
it after; a failed task :func:`release`\\ s it so that a later attempt
may try again. The value says where things stand:

``claim:<task id>`` (with a time to live, the *lease*)
    That task is at work. Another task finds the claim *busy* and leaves
    the work alone. The same task id finding it is the same message
    delivered again (a retry, or the task of a killed worker coming back):
    the claim is *mine* again, and its lease starts afresh.
``done:<detail>`` (kept :data:`DONE_TTL` seconds)
    The work is done; ``detail`` says what it left (a file name).

A worker killed in the middle of the work leaves its claim until the
lease expires; its task, acknowledged late, comes back and finds the
claim its own or expired, so nothing is lost. Work whose result lives
elsewhere (a file in GraceDb) should look there before doing it again,
because a worker can also be killed after the work and before
:func:`finish`.
"""
import dataclasses
import threading

import redis

from . import app

__all__ = ('Claim', 'claim', 'finish', 'release', 'release_if_unchanged',
           'redis_client', 'DONE_TTL')

#: Seconds a finished claim is remembered (then only GraceDb knows).
DONE_TTL = 30 * 86400

_PREFIX = 'gwcelery:claim:'

# Take the key if free or already ours (and renew the lease); else return
# what holds it.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value == false or value == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return ''
end
return value
"""

# Drop the key only while it is our claim.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Unless another key has changed, drop the key while it is our claim.
_RELEASE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then
    return 0
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
end
return 1
"""

_lock = threading.Lock()
_clients = {}


def redis_client():
    """The process's :class:`redis.Redis` client of the broker's Redis
    (:data:`~gwcelery.conf.broker_url`), where claims and other
    cross-worker records live."""
    url = app.conf.broker_url
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url)
        return client


def _key(graceid, what):
    return f'{_PREFIX}{graceid}:{what}'


@dataclasses.dataclass(frozen=True)
class Claim:
    """Outcome of :func:`claim`."""

    state: str
    """``'mine'``, ``'busy'`` (another task's) or ``'done'``."""
    detail: str = ''
    """For ``'busy'`` the other task's id; for ``'done'`` the detail given
    to :func:`finish`."""


def claim(graceid, what, owner, lease):
    """Claim ``what`` of ``graceid`` for task ``owner`` for ``lease``
    seconds; return a :class:`Claim`."""
    value = redis_client().eval(_CLAIM, 1, _key(graceid, what),
                                f'claim:{owner}', max(1, int(lease * 1000)))
    value = value.decode() if isinstance(value, bytes) else str(value)
    if not value:
        return Claim('mine')
    kind, _, detail = value.partition(':')
    return Claim('done' if kind == 'done' else 'busy', detail)


def finish(graceid, what, detail=''):
    """Record ``what`` of ``graceid`` as done."""
    redis_client().set(_key(graceid, what), f'done:{detail}', ex=DONE_TTL)


def release(graceid, what, owner):
    """Give up ``owner``'s claim (after a failure), if it still holds it."""
    redis_client().eval(_RELEASE, 1, _key(graceid, what), f'claim:{owner}')


def release_if_unchanged(graceid, what, owner, key, value):
    """Give up ``owner``'s claim unless the Redis ``key`` no longer holds
    ``value`` (``''`` for a missing key), in one step: a task that must
    redo its work when something changed while it worked keeps its claim
    then. Return whether the claim was given up."""
    return bool(redis_client().eval(_RELEASE_IF_UNCHANGED, 2,
                                    _key(graceid, what), key,
                                    f'claim:{owner}', value))
