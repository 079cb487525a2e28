"""Celery tasks over the GraceDb REST API.

Every call that gwcelery makes to GraceDb goes through a task here, so that
it runs on a worker, is retried when GraceDb is briefly unavailable, and can
be part of a canvas. The tasks call the ``ligo-gracedb`` client, built on
first use from the :data:`~gwcelery.conf.gracedb_url` setting and kept for
the life of the process (rebuilt if the setting changes); a plain
``http://`` URL, such as the local GraceDb's, is used without credentials.

Retries: a request that fails with a connection error, a timeout (see
:data:`~gwcelery.conf.gracedb_timeout`) or HTTP 408, 409, 429 or 5xx is
retried up to :data:`~gwcelery.conf.gracedb_max_retries` times, after
:data:`~gwcelery.conf.gracedb_retry_backoff` seconds, doubling each time up
to :data:`~gwcelery.conf.gracedb_retry_backoff_max`, with jitter. Any other
HTTP error (400, 403, 404, …) is final at once and raised as
:class:`GraceDbError`, whose arguments (status code, reason, address)
survive the JSON result backend.

The tasks return plain JSON values (dicts and lists, or bytes for
:func:`download`). They are acknowledged only when they finish, so a task
whose worker process is killed in the middle of a call is run again by
another process rather than lost.
"""
import json
import logging
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .. import app

__all__ = ('GraceDbError', 'client', 'concurrently', 'request_count',
           'is_transient', 'retry_delay', 'retry_or_drop', 'create_event',
           'replace_event', 'get_event', 'get_events', 'create_superevent',
           'update_superevent', 'get_superevent', 'get_superevents',
           'add_event_to_superevent', 'remove_event_from_superevent',
           'upload', 'download', 'get_log', 'create_label', 'remove_label',
           'get_labels', 'create_tag', 'remove_tag', 'create_voevent',
           'get_voevents', 'confirm_as_gw', 'write_json_with_label')

log = logging.getLogger(__name__)

#: HTTP status codes worth retrying besides every 5xx.
TRANSIENT_STATUS = frozenset({408, 409, 429})


class GraceDbError(Exception):
    """GraceDb refused a request for good (an HTTP error not retried).

    Arguments: ``(status_code, reason, url)``.
    """

    @property
    def status_code(self):
        return self.args[0]

    @property
    def reason(self):
        return self.args[1]

    @property
    def url(self):
        return self.args[2]


class _TimeoutAdapter(HTTPAdapter):
    """Puts a default timeout on every request: the client sets none, and
    a request to a hung server would otherwise occupy a worker forever."""

    def __init__(self, timeout, **kwargs):
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        if kwargs.get('timeout') is None:
            kwargs['timeout'] = self.timeout
        return super().send(request, **kwargs)


_lock = threading.Lock()
_cache = {}
_answered = [0]
_answered_lock = threading.Lock()


def _count(response, *args, **kwargs):
    with _answered_lock:
        _answered[0] += 1


def request_count():
    """How many requests this process's clients have had answered by
    GraceDb so far (any status), for the superevent manager's statistics
    and the benchmarks."""
    return _answered[0]


def _build(url, timeout):
    from ligo.gracedb.rest import GraceDb

    # Never send credentials over unencrypted HTTP.
    noauth = urlsplit(url).scheme == 'http'
    gracedb = GraceDb(service_url=url, force_noauth=noauth)
    for prefix in ('http://', 'https://'):
        retries = gracedb.get_adapter(prefix + 'x').max_retries
        gracedb.mount(prefix, _TimeoutAdapter(timeout, max_retries=retries))
    gracedb.hooks['response'].append(_count)
    return gracedb


def client():
    """The process's :class:`ligo.gracedb.rest.GraceDb` client for the
    configured URL."""
    key = (app.conf.gracedb_url, float(app.conf.gracedb_timeout))
    with _lock:
        if _cache.get('key') != key:
            old = _cache.get('client')
            _cache['client'] = _build(*key)
            _cache['key'] = key
            if old is not None:
                old.close()
        return _cache['client']


_pool_lock = threading.Lock()
_pools = {}


def concurrently(*calls):
    """Call functions (GraceDb requests through :func:`client`, whose
    connection pool the threads share) at the same time, in threads of
    this process; return their results in order.

    For the path to a notice, where independent requests one after the
    other would add up their latencies. An exception of a call is raised
    (the first in order) once every call has ended.
    """
    # One pool per process: a pool made before a fork has no threads in
    # the child.
    pid = os.getpid()
    with _pool_lock:
        pool = _pools.get(pid)
        if pool is None:
            _pools.clear()
            pool = _pools[pid] = ThreadPoolExecutor(
                4, thread_name_prefix='gracedb')
    futures = [pool.submit(call) for call in calls]
    wait(futures)
    return [future.result() for future in futures]


def _status(error):
    response = getattr(error, 'response', None)
    return getattr(response, 'status_code', None)


def _transient_status(status):
    return status is not None and (status in TRANSIENT_STATUS
                                   or status >= 500)


def is_transient(error):
    """Whether a failed GraceDb call may succeed if repeated.

    True for connection errors, timeouts, and HTTP 408, 409, 429 and 5xx
    (as :class:`GraceDbError` or as the client's HTTP error).
    """
    if isinstance(error, GraceDbError):
        return _transient_status(error.status_code)
    if isinstance(error, requests.HTTPError):
        return _transient_status(_status(error))
    return isinstance(error, (requests.ConnectionError, requests.Timeout,
                              requests.exceptions.ChunkedEncodingError,
                              requests.exceptions.RetryError,
                              ConnectionError, TimeoutError))


def retry_delay(retries, conf=None):
    """Seconds to wait before retry number ``retries + 1`` of something
    that failed because GraceDb did.

    :data:`~gwcelery.conf.gracedb_retry_backoff` seconds, doubling with
    each retry up to :data:`~gwcelery.conf.gracedb_retry_backoff_max`, then
    multiplied by a random factor between 0.5 and 1 so that many tasks that
    failed at once do not all come back at once.

    Parameters
    ----------
    retries : int
        Retries so far (``task.request.retries``).
    conf : celery.app.utils.Settings, optional
        The configuration (default: the application's).
    """
    conf = conf or app.conf
    base = float(conf.gracedb_retry_backoff)
    ceiling = float(conf.gracedb_retry_backoff_max)
    # Capping the exponent first keeps 2 ** retries finite however long a
    # task has been retrying.
    delay = min(ceiling, base * 2 ** min(retries or 0, 64))
    return delay * random.uniform(0.5, 1.0)


def retry_or_drop(task, exc, what):
    """What a handler does when its work failed on GraceDb.

    A transient failure (:func:`is_transient`) retries ``task`` after
    :func:`retry_delay` (this raises :class:`celery.exceptions.Retry`); a
    request that GraceDb refused for good (:class:`GraceDbError`) is logged
    and the work dropped (this returns); anything else is raised again.

    Parameters
    ----------
    task : celery.Task
        The bound task that failed.
    exc : Exception
    what : str
        The work, for log messages (``'GCN notice ivo://…'``).
    """
    if is_transient(exc):
        delay = retry_delay(task.request.retries)
        log.warning('GraceDb failed on %s (%s); trying again in %.1f s',
                    what, exc, delay)
        raise task.retry(exc=exc, countdown=delay)
    if isinstance(exc, GraceDbError):
        log.error('Dropping %s: GraceDb refused a request for good (HTTP %s: '
                  '%s)', what, exc.status_code, exc.reason)
        return
    raise exc


def _reason(error):
    response = error.response
    try:
        return str(response.json().get('detail', response.text))
    except ValueError:
        return response.text[:1000]


class GraceDbTask(app.Task):
    """Base class of the tasks: retry transient failures with back-off."""

    # A worker process that dies in the middle of a call gives the task
    # back to the queue instead of losing it (at least once, like a retry).
    acks_late = True
    reject_on_worker_lost = True

    #: Retry transient failures for as long as they last, rather than
    #: :data:`~gwcelery.conf.gracedb_max_retries` times: for tasks whose
    #: work must not be lost while GraceDb is away (the notices').
    retry_forever = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.retry_forever:
            # What retry(max_retries=None) falls back on: no limit.
            cls.max_retries = None

    def backoff(self, retries):
        """Seconds before retry number ``retries + 1``: :func:`retry_delay`."""
        return retry_delay(retries)

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as error:
            request = self.request
            retries = request.retries or 0
            limit = None if self.retry_forever else \
                app.conf.gracedb_max_retries
            # Called as a function (not through a worker), the caller
            # decides what to do: it gets the error at once.
            if (is_transient(error) and not request.called_directly
                    and not request.is_eager
                    and (limit is None or retries < limit)):
                countdown = self.backoff(retries)
                log.warning('%s failed (%s: %s); retry %d of %s in %.1f s',
                            self.name, type(error).__name__, error,
                            retries + 1, limit or 'unlimited', countdown)
                raise self.retry(exc=error, countdown=countdown,
                                 max_retries=limit)
            if isinstance(error, requests.HTTPError) and _status(error):
                raise GraceDbError(_status(error), _reason(error),
                                   error.response.url) from None
            raise


def _task(**options):
    return app.task(base=GraceDbTask, shared=False, **options)


def _json(response):
    return response.json() if response.content else None


# -- events ------------------------------------------------------------------

@_task()
def create_event(filecontents, search, pipeline, group, labels=(),
                 offline=False, filename='initial.data'):
    """Upload a new event; return its JSON."""
    return client().create_event(
        group, pipeline, filename, filecontents=filecontents,
        search=search, labels=list(labels) or None, offline=offline).json()


@_task()
def replace_event(graceid, payload, filename='initial.data'):
    """Replace an event's data file; return the event's new JSON."""
    return client().replace_event(graceid, filename,
                                  filecontents=payload).json()


@_task()
def get_event(graceid):
    """An event's JSON."""
    return client().event(graceid).json()


@_task()
def get_events(query=None, orderby=None, max_results=None):
    """Events matching a query (see :mod:`gwcelery.localgracedb.query`)."""
    return list(client().events(query=query, orderby=orderby,
                                max_results=max_results))


# -- superevents -------------------------------------------------------------

@_task()
def create_superevent(graceid, t0, t_start, t_end, category='production',
                      events=(), labels=()):
    """Create a superevent with ``graceid`` preferred; return its JSON."""
    return client().create_superevent(
        t_start, t0, t_end, graceid, category=category,
        events=list(events) or None, labels=list(labels) or None).json()


@_task()
def update_superevent(superevent_id, t_start=None, t_end=None, t_0=None,
                      preferred_event=None, em_type=None,
                      time_coinc_far=None, space_coinc_far=None):
    """Change a superevent; return its new JSON."""
    return client().update_superevent(
        superevent_id, t_start=t_start, t_end=t_end, t_0=t_0,
        preferred_event=preferred_event, em_type=em_type,
        time_coinc_far=time_coinc_far,
        space_coinc_far=space_coinc_far).json()


@_task()
def get_superevent(superevent_id):
    """A superevent's JSON."""
    return client().superevent(superevent_id).json()


@_task()
def get_superevents(query='', orderby=None, max_results=None):
    """Superevents matching a query."""
    return list(client().superevents(query=query, orderby=orderby,
                                     max_results=max_results))


@_task()
def add_event_to_superevent(superevent_id, graceid):
    """Add an event to a superevent."""
    return _json(client().add_event_to_superevent(superevent_id, graceid))


@_task()
def remove_event_from_superevent(superevent_id, graceid):
    """Remove an event from a superevent."""
    client().remove_event_from_superevent(superevent_id, graceid)


@_task()
def confirm_as_gw(superevent_id):
    """Confirm a superevent as a GW; return its new JSON."""
    return _json(client().confirm_superevent_as_gw(superevent_id))


# -- logs, files, labels, tags -------------------------------------------------

@_task()
def upload(filecontents, filename, graceid, message, tags=()):
    """Write a log entry, with a file unless ``filecontents`` is ``None``;
    return the log entry's JSON."""
    if filecontents is None:
        filename = None
    return client().write_log(graceid, message, filename=filename,
                              filecontents=filecontents,
                              tag_name=list(tags)).json()


@_task()
def download(filename, graceid):
    """Content (bytes) of a file, ``name`` (latest) or ``name,N``."""
    return client().files(graceid, filename).read()


@_task()
def get_log(graceid):
    """All log entries of an event or superevent."""
    return client().logs(graceid).json()['log']


@_task()
def create_label(label, graceid):
    """Apply a label (applying it again is harmless)."""
    client().write_label(graceid, label)


@_task()
def remove_label(label, graceid):
    """Remove a label."""
    client().remove_label(graceid, label)


@_task()
def get_labels(graceid):
    """Names of the labels of an event or superevent."""
    return [label['name']
            for label in client().labels(graceid).json()['labels']]


@_task()
def create_tag(tag, n, graceid):
    """Tag log entry number ``n``."""
    client().add_tag(graceid, n, tag)


@_task()
def remove_tag(tag, n, graceid):
    """Remove a tag from log entry number ``n``."""
    client().remove_tag(graceid, n, tag)


# -- VOEvents ----------------------------------------------------------------

@_task()
def create_voevent(graceid, voevent_type, **kwargs):
    """Have GraceDb build a VOEvent; return the VOEvent's JSON (its
    ``filename`` names the XML file, see :func:`download`)."""
    return client().create_voevent(graceid, voevent_type, **kwargs).json()


@_task()
def get_voevents(graceid):
    """The VOEvents of a superevent."""
    return client().voevents(graceid).json()['voevents']


# -- for tasks built on GraceDbTask ------------------------------------------

def write_json_with_label(graceid, filename, payload, message, tags, label):
    """Write ``payload`` as the JSON file ``filename`` in a log entry, then
    apply ``label``, so that the file is there before anyone reacts to the
    label. Called from a task on :class:`GraceDbTask`, a transient failure
    repeats that task (which may leave a second version of the file)."""
    gracedb = client()
    gracedb.write_log(graceid, message, filename=filename,
                      filecontents=json.dumps(payload).encode(),
                      tag_name=list(tags))
    gracedb.write_label(graceid, label)
