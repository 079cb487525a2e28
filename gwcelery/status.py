"""What the listeners say about themselves, in Redis, for the health check.

A listener (the LVAlert listener, the GCN listener) writes a small JSON
record under ``gwcelery:status:<name>`` while it is subscribed or
connected, and renews it every third of
:data:`~gwcelery.conf.listener_status_ttl`; it deletes the record when it
loses its connection. A listener that dies cannot delete it, so the record
has that time to live: it disappears by itself soon after. ``gwcelery
nagios`` (:mod:`gwcelery.tools.nagios`) reads the records.

Writing a record never raises: a Redis outage is logged and the listener
goes on.
"""
import json
import logging
import threading
import time

import redis
from redis.exceptions import RedisError

__all__ = ('KEY_PREFIX', 'key', 'read', 'Recorder')

log = logging.getLogger(__name__)

KEY_PREFIX = 'gwcelery:status:'


def key(name):
    """Redis key of a listener's record."""
    return KEY_PREFIX + name


def _redis_url(conf):
    # The same Redis as the eternal tasks' locks.
    url = str(conf.result_backend)
    if not url.startswith(('redis://', 'rediss://', 'unix://')):
        url = conf.broker_url
    return url


def read(name, conf):
    """A listener's record, or ``None`` if it has none (not running, not
    connected, or dead for longer than the record's time to live).

    Parameters
    ----------
    name : str
        ``'lvalert'`` or ``'gcn'``.
    conf : celery.app.utils.Settings
        The configuration (for the Redis URL).

    Returns
    -------
    dict or None
        The record, with ``age``: seconds since it was last written.

    Raises
    ------
    redis.exceptions.RedisError
        If Redis cannot be reached.
    """
    client = redis.Redis.from_url(_redis_url(conf), socket_timeout=5,
                                  socket_connect_timeout=5)
    try:
        value = client.get(key(name))
    finally:
        client.close()
    if value is None:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    record['age'] = max(0.0, time.time() - float(record.get('written', 0)))
    return record


class Recorder:
    """Writes one listener's record, at most every third of its time to
    live unless what it says changes.

    Parameters
    ----------
    name : str
        The listener's name.
    conf : celery.app.utils.Settings
        The configuration: Redis URL and
        :data:`~gwcelery.conf.listener_status_ttl`.
    """

    def __init__(self, name, conf):
        self.name = name
        self.ttl = float(conf.listener_status_ttl)
        self._client = redis.Redis.from_url(
            _redis_url(conf), socket_timeout=5, socket_connect_timeout=5)
        self._last = None
        self._written = 0.0
        self._lock = threading.Lock()

    def update(self, **info):
        """Say this (JSON values); cheap to call often."""
        now = time.monotonic()
        with self._lock:
            if info == self._last and now - self._written < self.ttl / 3:
                return
            record = dict(info, written=time.time())
            try:
                self._client.set(key(self.name), json.dumps(record),
                                 px=int(self.ttl * 1000))
            except RedisError as e:
                log.warning('Could not record the status of %s: %s',
                            self.name, e)
                return
            self._last, self._written = info, now

    def clear(self):
        """Delete the record (the listener is no longer connected)."""
        with self._lock:
            if self._last is None:
                return
            try:
                self._client.delete(key(self.name))
            except RedisError as e:
                log.warning('Could not clear the status of %s: %s',
                            self.name, e)
                return
            self._last = None

    def close(self):
        """Delete the record and close the connection."""
        self.clear()
        self._client.close()
