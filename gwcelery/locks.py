"""Short-lived Redis locks that serialize work on one thing across workers.

A queue served by one process already runs its tasks one at a time, but two
workers of that queue, or a message redelivered while its first delivery is
still running, would not be. :func:`hold` takes a lock in the broker's
Redis (``SET NX`` with an expiry, released only by its holder) so that the
critical section runs once at a time whatever the deployment. The expiry
frees the lock of a process that died holding it.
"""
import contextlib
import logging
import threading

import redis

from . import app

__all__ = ('LockTimeout', 'hold', 'KEY_PREFIX')

log = logging.getLogger(__name__)

#: Prefix of the Redis keys of the locks.
KEY_PREFIX = 'gwcelery:lock:'

_clients = {}
_clients_lock = threading.Lock()


class LockTimeout(Exception):
    """Another holder kept the lock for longer than we were willing to wait."""


def _client():
    url = app.conf.broker_url
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url)
        return _clients[url]


@contextlib.contextmanager
def hold(name, ttl=60.0, wait=10.0):
    """Run the ``with`` block while holding the lock ``name``.

    Parameters
    ----------
    name : str
        What the lock protects (the key is :data:`KEY_PREFIX` + name).
    ttl : float
        Seconds after which the lock expires if its holder has not
        released it; keep it well above the time the block takes.
    wait : float
        Seconds to wait for the lock.

    Raises
    ------
    LockTimeout
        The lock was not free within ``wait`` seconds.
    """
    lock = _client().lock(KEY_PREFIX + name, timeout=ttl,
                          blocking_timeout=wait)
    if not lock.acquire(blocking=False):
        log.info('Waiting for lock %s', name)
        if not lock.acquire():
            raise LockTimeout(f'lock {name} still held after {wait:g} s')
    try:
        yield
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            # It expired while held and may now be someone else's: the
            # block took longer than the ttl, which deserves a warning.
            log.warning('Lock %s expired before it was released (held '
                        'longer than %g s)', name, ttl)
