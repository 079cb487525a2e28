"""Database engine and transactions of the local GraceDb.

Any SQLAlchemy URL works. SQLite files (the default) are opened in WAL mode
with ``synchronous=FULL``: a write that the server has acknowledged is on
disk, so it survives the server being killed or the machine losing power.
Each HTTP request that writes does so in exactly one transaction
(:meth:`Database.write`), and writers take turns: on SQLite the transaction
starts with ``BEGIN IMMEDIATE``, on PostgreSQL it takes an advisory lock,
so that concurrent writers queue up instead of failing halfway ("database
is locked") or picking the same new identifier; on SQLite the writers of
one server also queue on a lock of its own, which hands over at once.
Other databases rely on unique constraints and rerun a transaction that
collided.
"""
import contextlib
import logging
import threading

from sqlalchemy import create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .models import Base

__all__ = ('Database',)

log = logging.getLogger(__name__)

#: Seconds an SQLite connection waits for another writer's lock.
SQLITE_BUSY_TIMEOUT = 30


def _sqlite_engine(url, immediate):
    engine = create_engine(
        url, connect_args={'check_same_thread': False,
                           'timeout': SQLITE_BUSY_TIMEOUT})

    @event.listens_for(engine, 'connect')
    def on_connect(dbapi_connection, record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=FULL')
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute(f'PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def on_begin(connection):
        connection.exec_driver_sql(
            'BEGIN IMMEDIATE' if immediate else 'BEGIN')

    return engine


#: Key of the PostgreSQL advisory lock that serializes write transactions.
ADVISORY_LOCK_KEY = 0x6777636c  # "gwcl"


def _serialize_postgresql_writes(engine):
    # New identifiers (graceids, superevent letters, log numbers) are the
    # largest existing one plus one; writers taking turns, as on SQLite,
    # never collide. The lock is released when the transaction ends.
    @event.listens_for(engine, 'begin')
    def on_begin(connection):
        connection.exec_driver_sql(
            f'SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})')


class Database:
    """The database of one server.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL, e.g. ``sqlite:////path/gracedb.sqlite`` or
        ``postgresql://user@host/db``.
    """

    def __init__(self, url):
        self.url = url
        # Two engines on one database: readers never take the write lock.
        # The server's own writers queue on a lock of the process, which
        # hands over the moment a transaction ends; left to SQLite's busy
        # handler, a waiting writer polls with sleeps of up to 100 ms and a
        # burst of uploads spends most of its time asleep.
        self._turns = contextlib.nullcontext()
        if url.startswith('sqlite'):
            self.read_engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
            self._turns = threading.Lock()
        else:
            self.read_engine = create_engine(url, pool_pre_ping=True)
            self.write_engine = create_engine(url, pool_pre_ping=True)
            if self.write_engine.dialect.name == 'postgresql':
                _serialize_postgresql_writes(self.write_engine)
        Base.metadata.create_all(self.write_engine)

    @contextlib.contextmanager
    def read(self):
        """A session for reading; it is rolled back at the end."""
        with Session(self.read_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def write(self, func, attempts=5):
        """Run ``func(session)`` in one transaction and commit it.

        A unique-constraint conflict (two writers picking the same new
        identifier on a database without ``BEGIN IMMEDIATE``) reruns the
        whole transaction; other errors propagate after rollback.

        Returns
        -------
        object
            What ``func`` returned.
        """
        for attempt in range(attempts):
            try:
                with self._turns, Session(self.write_engine,
                                          expire_on_commit=False) as session:
                    with session.begin():
                        result = func(session)
                return result
            except (IntegrityError, OperationalError) as e:
                if attempt == attempts - 1 or not _retryable(e):
                    raise
                log.warning('Retrying a transaction after: %s', e.orig)

    def dispose(self):
        """Close every pooled connection."""
        self.read_engine.dispose()
        self.write_engine.dispose()


def _retryable(error):
    text = str(error.orig).lower()
    return ('unique' in text or 'duplicate' in text or 'locked' in text
            or 'busy' in text)
