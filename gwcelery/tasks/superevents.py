"""The superevent manager: G events grouped into superevents, one pass at a time.

:func:`handle` is an LVAlert handler on the pipeline nodes (:data:`NODES`).
Sending it an alert first appends the alert to the manager's *intake*, a
Redis list (:mod:`gwcelery.superevent_intake`), in the sending process —
the LVAlert listener — before the listener acknowledges the LVAlert item;
the Celery message that follows only wakes the manager up. On the
``superevent`` queue, which one serial worker serves, each run of the task
is a *pass*: it takes every alert waiting in the intake at once, decides for
each, in order, what handling it alone would decide — create a superevent,
add the event to one, re-evaluate the one it belongs to, or ignore it — by
the rules of :mod:`gwcelery.superevent_rules` (replayed by
:class:`gwcelery.superevent_batch.Batch`), writes the net result to GraceDb
and only then removes those alerts from the intake. See
:doc:`/superevents` and :doc:`/reliability`.

Every step can be repeated: a pass that is interrupted is simply made
again, and a repeated alert changes nothing that is already done. The
alert types ``new``, ``update`` and ``label_added`` (with one of the
completeness labels) are applied; other types, other labels and malformed
alerts are logged and ignored.

:func:`reconcile`, run by beat every
:data:`~gwcelery.conf.superevent_reconcile_interval` seconds on the default
queue, is the safety net: it looks for recent events that should be in a
superevent but are not and hands them to :func:`handle` again, with a
warning.
"""
import datetime
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from celery import signals
from celery.utils import uuid

from .. import app, timeline
from ..superevent_batch import (REQUIRED, AddEvent, Batch, NewSuperevent,
                                UpdateSuperevent)
from ..superevent_cache import NeighbourCache
from ..superevent_intake import Intake, decode
from ..superevent_rules import Rules
from . import gracedb, lvalert

__all__ = ('NODES', 'ALERT_TYPES', 'handle', 'drain', 'reconcile',
           'missing_events', 'run_pass', 'apply_batch', 'rules', 'intake')

log = logging.getLogger(__name__)

#: The LVAlert nodes whose events the manager groups into superevents.
#: MDC events arrive on the production nodes with search ``MDC``.
NODES = tuple(
    f'{prefix}_{pipeline}'
    for pipeline in ('gstlal', 'pycbc', 'spiir', 'mbtaonline', 'cwb', 'olib')
    for prefix in (
        'burst' if pipeline in ('cwb', 'olib') else 'cbc', 'test'))

#: Alert types that make the manager look at the event.
ALERT_TYPES = frozenset({'new', 'update', 'label_added'})

#: Most alerts applied in one batch.
MAX_BATCH = 500

#: Seconds a pass goes on taking new batches before it ends and leaves the
#: rest to a new run (so that a warm shutdown never waits long).
PASS_SECONDS = 10.0

#: Requests adding events to one superevent that run at a time.
ADD_CONCURRENCY = 4

#: Seconds past an event's neighbour window that a neighbour query also
#: asks for: events arrive roughly in time order, so the answer serves the
#: events that follow (see :mod:`gwcelery.superevent_cache`).
QUERY_LOOKAHEAD = 1000.0


def rules():
    """The :class:`~gwcelery.superevent_rules.Rules` of the configuration."""
    return Rules.from_conf(app.conf)


_intakes = {}
_caches = {}


def intake():
    """The process's :class:`~gwcelery.superevent_intake.Intake` on the
    broker's Redis."""
    url = app.conf.broker_url
    found = _intakes.get(url)
    if found is None:
        found = _intakes[url] = Intake(redis.Redis.from_url(url))
    return found


def _cache():
    ttl = float(app.conf.superevent_cache_ttl or 0)
    found = _caches.get(ttl)
    if found is None:
        found = _caches[ttl] = NeighbourCache(ttl)
    return found


def _status(exc):
    """HTTP status of a failed GraceDb call, or ``None``."""
    if isinstance(exc, gracedb.GraceDbError):
        return exc.status_code
    return getattr(getattr(exc, 'response', None), 'status_code', None)


def _transient(exc):
    """Whether trying the pass again later may succeed."""
    return gracedb.is_transient(exc) or isinstance(exc, redis.RedisError)


# -- taking alerts in ------------------------------------------------------------

class _Item:
    """One alert of a batch that the manager applies."""

    def __init__(self, alert_type, graceid, event):
        self.alert_type = alert_type
        self.graceid = graceid
        self.event = event
        self.outcome = None

    def __str__(self):
        return f'{self.alert_type} alert for {self.graceid}'


def _carried_event(alert, graceid):
    """The event JSON that the alert carries, if it is complete."""
    event = alert.get('object')
    if isinstance(event, dict) and event.get('graceid') == graceid and \
            REQUIRED <= set(event):
        return event
    return None


def _drop(what, exc):
    if isinstance(exc, gracedb.GraceDbError):
        log.error('Dropping %s: GraceDb refused a request for good '
                  '(HTTP %s: %s)', what, exc.status_code, exc.reason)
    else:
        log.error('Dropping %s: %s: %s', what, type(exc).__name__, exc,
                  exc_info=not isinstance(exc, LookupError))


def _take_in(entries):
    """The alerts of a batch to apply, with their events; others logged."""
    wanted = {name for names in app.conf.superevent_complete_labels.values()
              for name in names}
    items = []
    for raw in entries:
        alert = decode(raw)
        try:
            graceid = alert['uid']
            alert_type = alert['alert_type']
        except (KeyError, TypeError, IndexError):
            graceid = alert_type = None
        if not isinstance(graceid, str) or not isinstance(alert_type, str):
            log.error('Ignoring a malformed alert without uid/alert_type: '
                      '%.200r', alert)
            continue
        if alert_type not in ALERT_TYPES:
            log.debug('Ignoring %s alert for %s', alert_type, graceid)
            continue
        if alert_type == 'label_added':
            data = alert.get('data')
            label = data.get('name') if isinstance(data, dict) else None
            if label not in wanted:
                log.info('Ignoring label %s on %s: not a completeness label',
                         label, graceid)
                continue
        item = _Item(alert_type, graceid, _carried_event(alert, graceid))
        if item.event is None:
            # No usable copy in the alert: ask GraceDb.
            try:
                item.event = gracedb.get_event(graceid)
            except Exception as exc:
                if _transient(exc):
                    raise
                _drop(item, exc)
                continue
        items.append(item)
    return items


# -- neighbours and the reader --------------------------------------------------

def _bounds(value):
    return float(f'{value:.6f}')


def _windows(r, items):
    """Merged neighbour windows of the batch's events."""
    windows = []
    for item in items:
        try:
            start, end = r.query_window(item.event)
        except (KeyError, TypeError, ValueError):
            continue
        windows.append((_bounds(start), _bounds(end)))
    merged = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _neighbours(r, items, cache, use_cache):
    """Superevents around the batch's events; whether the cache served."""
    found, cached = {}, False
    for start, end in _windows(r, items):
        if use_cache and cache.covers(start, end):
            superevents = cache.within(start, end)
            cached = True
        else:
            top = _bounds(end + QUERY_LOOKAHEAD)
            superevents = gracedb.get_superevents(f'{start:.6f} .. {top:.6f}')
            cache.store(start, top, superevents)
        found.update((s['superevent_id'], s) for s in superevents)
    return list(found.values()), cached


class _Reader:
    """What a :class:`~gwcelery.superevent_batch.Batch` looks up."""

    @staticmethod
    def event(graceid):
        try:
            return gracedb.get_event(graceid)
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise

    @staticmethod
    def members(superevent_id):
        return gracedb.get_events(f'superevent: {superevent_id}')

    @staticmethod
    def superevent(superevent_id):
        return gracedb.get_superevent(superevent_id)


# -- writing ---------------------------------------------------------------------

def _target(write):
    return (write.provisional_id if isinstance(write, NewSuperevent)
            else write.superevent_id)


def _steps(writes):
    """The writes in steps: the adds to one superevent together, every
    other write alone."""
    step = []
    for write in writes:
        if isinstance(write, AddEvent) and step and isinstance(
                step[-1], AddEvent) and _target(step[-1]) == _target(write):
            step.append(write)
            continue
        if step:
            yield step
        step = [write]
    if step:
        yield step


_pools = []


def _adding_pool():
    if not _pools:
        _pools.append(ThreadPoolExecutor(ADD_CONCURRENCY,
                                         thread_name_prefix='superevent-add'))
    return _pools[0]


def _carry_out(write, ids, cache):
    """Make one write; return the exception it raised, or ``None``."""
    target = _target(write)
    try:
        if isinstance(write, NewSuperevent):
            superevent = gracedb.create_superevent(
                write.preferred_event, write.t_0, write.t_start,
                write.t_end, category=write.category, events=write.events)
            ids[target] = superevent['superevent_id']
            cache.put(superevent)
            log.info('Created superevent %s for %s', ids[target],
                     ', '.join((write.preferred_event, *write.events)))
        elif isinstance(write, AddEvent):
            gracedb.add_event_to_superevent(target, write.graceid)
            log.info('Added %s to superevent %s', write.graceid, target)
        else:
            cache.put(gracedb.update_superevent(target, **write.changes))
            log.info('Updated superevent %s: %s', target, write.changes)
    except Exception as exc:
        return exc
    return None


def _write(batch, cache):
    """Carry out the batch's writes.

    The events added to one superevent go ADD_CONCURRENCY requests at a
    time: they are independent, and in a burst the pipelines' uploads
    queue for GraceDb's database too, where one request at a time gets a
    small share of it.

    Returns
    -------
    ids : dict
        Provisional id → GraceDb id of each superevent created.
    refused : set
        Ids (provisional or not) of superevents whose writes GraceDb
        refused for good; their remaining writes were skipped.
    """
    ids, refused, updated = {}, set(), set()
    for step in _steps(batch.writes()):
        target = _target(step[0])
        if target in refused:
            continue
        if len(step) == 1:
            errors = [_carry_out(step[0], ids, cache)]
        else:
            errors = list(_adding_pool().map(
                lambda write: _carry_out(write, ids, cache), step))
        for exc in errors:
            if exc is not None and _transient(exc):
                raise exc
        for exc in filter(None, errors):
            refused.add(target)
            log.error('GraceDb refused a write to superevent %s (%s: %s)',
                      ids.get(target, target), type(exc).__name__, exc)
        if isinstance(step[0], UpdateSuperevent) and target not in refused:
            updated.add(target)
    for superevent_id in batch.added:
        if superevent_id not in refused | updated:
            cache.put(batch.view[superevent_id])
    return ids, refused


def apply_batch(entries, cache=None, use_cache=True):
    """Apply a batch of intake entries (raw alerts) to GraceDb.

    Alerts that cannot be applied for good (malformed, unknown to GraceDb,
    refused) are logged and left out; a transient failure of GraceDb or
    Redis raises, and applying the same entries again is safe.

    Returns
    -------
    int
        How many alerts were handled.
    """
    cache = _cache() if cache is None else cache
    started, requests = time.monotonic(), gracedb.request_count()
    r = rules()
    items = _take_in(entries)
    view, cached = _neighbours(r, items, cache, use_cache)
    batch = Batch(r, view, _Reader())
    for item in items:
        try:
            item.outcome = batch.add(item.event)
        except Exception as exc:
            if _transient(exc):
                raise
            _drop(item, exc)
    ids, refused = _write(batch, cache)
    if refused:
        cache.clear()
        if cached:
            # Perhaps what the cache said was out of date: again, afresh.
            log.warning('Applying the batch again without the cache')
            return apply_batch(entries, cache, use_cache=False)
    handled = 0
    for item in items:
        outcome = item.outcome
        if outcome is None:
            continue
        if outcome.superevent_id in refused:
            log.error('Dropping %s: its superevent could not be written',
                      item)
            continue
        if outcome.action == 'ignore':
            log.info('Not grouping %s: %s', item.graceid, outcome.reason)
        superevent_id = ids.get(outcome.superevent_id,
                                outcome.superevent_id)
        log.info('Handled %s: superevent %s', item, superevent_id or 'none')
        handled += 1
    log.info('Batch of %d alerts: %d handled, %d GraceDb requests, %.1f ms',
             len(entries), handled, gracedb.request_count() - requests,
             1e3 * (time.monotonic() - started))
    return handled


def run_pass(source=None, cache=None, seconds=PASS_SECONDS):
    """Apply the alerts waiting in the intake, batch after batch, until it
    is empty or ``seconds`` have passed; return how many entries were
    taken.

    A batch leaves the intake only once applied. A transient failure of
    GraceDb or Redis raises (the batch stays for the next pass); any other
    error drops the batch with a logged traceback, so that one alert that
    trips a bug cannot stop the manager (:func:`reconcile` brings its
    event back later).
    """
    source = source or intake()
    cache = _cache() if cache is None else cache
    source.begin_pass()
    deadline = time.monotonic() + seconds
    taken = 0
    while True:
        entries = source.read(MAX_BATCH)
        if not entries:
            return taken
        try:
            apply_batch(entries, cache)
        except Exception as exc:
            cache.clear()
            if _transient(exc):
                raise
            log.exception('Dropping a batch of %d alerts that could not be '
                          'applied', len(entries))
        source.remove(entries)
        taken += len(entries)
        if time.monotonic() > deadline:
            if len(source):
                drain.delay()
            return taken


# -- the tasks -------------------------------------------------------------------

class IntakeTask(app.Task):
    """Base class of :func:`handle`: sending the task appends its alert to
    the intake first, and sends the Celery message only if no pass is
    already on its way to take the alert (then the returned result is
    never fulfilled; handlers' results are not kept anyway).

    Running it in place (``apply``, which is what eager mode and an
    eager group call) appends the alert too, then runs the pass at once.
    """

    def _take(self, args, kwargs):
        """Append the sent alert to the intake; whether a kick must go."""
        alert = args[0] if args else (kwargs or {}).get('alert')
        if (isinstance(alert, dict) and alert.get('alert_type') == 'new'
                and isinstance(alert.get('uid'), str)):
            # Where the latency timeline of an event's alerts starts.
            timeline.record_event_alert(alert)
        return intake().push(alert)

    def apply_async(self, args=None, kwargs=None, task_id=None, **options):
        if options.get('retries') or self.app.conf.task_always_eager:
            # A retry of a pass (its alert is in the intake already), or
            # eager mode, where apply_async runs apply, which appends.
            return super().apply_async(args, kwargs, task_id=task_id,
                                       **options)
        if not self._take(args, kwargs):
            return self.AsyncResult(task_id or uuid())
        try:
            return super().apply_async(args, kwargs, task_id=task_id,
                                       **options)
        except BaseException:
            intake().forget_kick()
            raise

    def apply(self, args=None, kwargs=None, *more, retries=None, **options):
        if not retries:
            self._take(args, kwargs)
        return super().apply(args, kwargs, *more, retries=retries, **options)


def _what(alert):
    if isinstance(alert, dict):
        return (f'{alert.get("alert_type")} alert for {alert.get("uid")} '
                '(and any other waiting alert)')
    return 'the waiting alerts'


def _run(task, alert=None):
    try:
        run_pass()
    except Exception as exc:
        if not _transient(exc):
            raise
        delay = gracedb.retry_delay(task.request.retries)
        log.warning('GraceDb failed while handling %s (%s); trying again in '
                    '%.1f s', _what(alert), exc, delay)
        raise task.retry(exc=exc, countdown=delay)


_PASS_OPTIONS = dict(queue='superevent', bind=True, acks_late=True,
                     reject_on_worker_lost=True, max_retries=None)


@lvalert.handler(*NODES, base=IntakeTask, **_PASS_OPTIONS)
def handle(self, alert):
    """Bring the superevents up to date with an LVAlert message and every
    other alert waiting in the intake.

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message: ``uid`` (the G event), ``alert_type``,
        ``data`` (for ``label_added``, the label with its ``name``),
        ``object`` (the event).
    """
    _run(self, alert)


@app.task(shared=False, ignore_result=True, **_PASS_OPTIONS)
def drain(self, warm_up=False):
    """Apply the alerts waiting in the intake (a pass without an alert of
    its own: when a worker starts, or to go on with a long backlog).

    Parameters
    ----------
    warm_up : bool
        First build the GraceDb client and read GraceDb's service root, so
        that the first alert does not wait for them (a few hundred ms).
    """
    if warm_up:
        try:
            gracedb.client().service_info
        except Exception as exc:
            log.warning('Could not reach GraceDb yet: %s', exc)
    _run(self)


@signals.worker_ready.connect
def _drain_on_start(sender, **kwargs):
    # Alerts may wait in the intake while no kick is on its way (one was
    # lost with a killed worker): the worker that serves the queue takes
    # them as soon as it starts.
    if 'superevent' in sender.app.amqp.queues.consume_from:
        drain.delay(warm_up=True)


# -- the safety net --------------------------------------------------------------

class _PeriodicTask(app.Task):
    @classmethod
    def on_bound(cls, app):
        interval = app.conf.superevent_reconcile_interval
        if interval and interval > 0:
            # A run that waited longer than a period is superseded.
            app.add_periodic_task(interval, cls, name=cls.name,
                                  expires=interval)


def _created(event):
    try:
        return datetime.datetime.strptime(
            event['created'], '%Y-%m-%d %H:%M:%S %Z').replace(
                tzinfo=datetime.timezone.utc)
    except (KeyError, TypeError, ValueError):
        return None


def missing_events(now=None):
    """Events that should be in a superevent but are not: eligible (FAR at
    most the threshold, not offline, not external), in none, created between
    :data:`~gwcelery.conf.superevent_reconcile_lookback` and
    :data:`~gwcelery.conf.superevent_reconcile_min_age` seconds ago, and not
    waiting in the intake."""
    conf = app.conf
    now = now or datetime.datetime.now(datetime.timezone.utc)
    newest = now - datetime.timedelta(
        seconds=conf.superevent_reconcile_min_age)
    oldest = now - datetime.timedelta(
        seconds=conf.superevent_reconcile_lookback)
    r = rules()
    waiting = intake().uids()
    found = []
    # Newest first, so that the search stops at the end of the look-back.
    for event in gracedb.client().events(
            query=f'far <= {r.far_threshold!r}', orderby='-created'):
        created = _created(event)
        if created is None or created > newest:
            continue
        if created < oldest:
            break
        if event.get('superevent') or r.ineligibility(event) or \
                event.get('graceid') in waiting:
            continue
        found.append(event)
    return found


@app.task(base=_PeriodicTask, shared=False, ignore_result=True)
def reconcile():
    """Hand every event that should be in a superevent but is not (see
    :func:`missing_events`) to :func:`handle`, as a ``new`` alert, with a
    warning for each.

    It runs on the default queue, so that its search never holds up the
    serial superevent worker; alerts waiting in the intake are not taken
    for lost ones, and an event whose alert the manager is applying right
    now is, at worst, handed to it a second time, which changes nothing.
    """
    try:
        events = missing_events()
    except Exception as exc:
        if not _transient(exc):
            raise
        log.warning('Reconciliation skipped: %s', exc)
        return
    for event in events:
        log.warning('Event %s (created %s, FAR %g Hz) should be in a '
                    'superevent but is not; handing it to the superevent '
                    'manager again', event['graceid'], event.get('created'),
                    event.get('far'))
        handle.delay({'uid': event['graceid'], 'alert_type': 'new',
                      'data': event, 'object': event})
