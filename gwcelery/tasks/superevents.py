"""The superevent manager: G events grouped into superevents, one at a time.

:func:`handle` is an LVAlert handler on the pipeline nodes
(:data:`NODES`). It runs on the ``superevent`` queue, which one serial
worker serves, and is acknowledged only when it has finished. For the
alert types ``new`` and ``update``, and ``label_added`` with one of the
completeness labels, it fetches the event afresh from GraceDb, looks up
the superevents around it, and creates a superevent, adds the event to
one, or re-evaluates the one it belongs to, following the rules of
:mod:`gwcelery.superevent_rules` (see :doc:`/superevents`). Every step
can be repeated: a redelivered alert changes nothing that is already done.
Other alert types, other labels and malformed alerts are logged and
ignored.
"""
import logging

from .. import app, timeline
from ..superevent_rules import Create, Ignore, Join, Rules
from . import gracedb, lvalert

__all__ = ('NODES', 'handle', 'process', 'reevaluate', 'rules')

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


def rules():
    """The :class:`~gwcelery.superevent_rules.Rules` of the configuration."""
    return Rules.from_conf(app.conf)


def _status(exc):
    """HTTP status of a failed GraceDb call, or ``None``."""
    if isinstance(exc, gracedb.GraceDbError):
        return exc.status_code
    return getattr(getattr(exc, 'response', None), 'status_code', None)


@lvalert.handler(*NODES, queue='superevent', bind=True, acks_late=True,
                 reject_on_worker_lost=True, max_retries=None)
def handle(self, alert):
    """Bring the superevents up to date with one LVAlert message.

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message: ``uid`` (the G event), ``alert_type``,
        ``data`` (for ``label_added``, the label with its ``name``).
    """
    try:
        graceid = alert['uid']
        alert_type = alert['alert_type']
    except (KeyError, TypeError):
        graceid = alert_type = None
    if not isinstance(graceid, str) or not isinstance(alert_type, str):
        log.error('Ignoring a malformed alert without uid/alert_type: %.200r',
                  alert)
        return
    if alert_type not in ALERT_TYPES:
        log.debug('Ignoring %s alert for %s', alert_type, graceid)
        return
    if alert_type == 'new':
        # Where the latency timeline of an event's alerts starts.
        timeline.record_event_alert(alert)
    if alert_type == 'label_added':
        label = (alert.get('data') or {}).get('name')
        wanted = {name for names in app.conf.superevent_complete_labels.values()
                  for name in names}
        if label not in wanted:
            log.info('Ignoring label %s on %s: not a completeness label',
                     label, graceid)
            return
    try:
        superevent_id = process(graceid)
    except Exception as exc:
        if gracedb.is_transient(exc):
            delay = gracedb.retry_delay(self.request.retries)
            log.warning('GraceDb failed while handling %s alert for %s '
                        '(%s); trying again in %.1f s', alert_type, graceid,
                        exc, delay)
            raise self.retry(exc=exc, countdown=delay)
        if isinstance(exc, gracedb.GraceDbError):
            log.error('Dropping %s alert for %s: GraceDb refused a request '
                      'for good (HTTP %s: %s)', alert_type, graceid,
                      exc.status_code, exc.reason)
            return
        raise
    log.info('Handled %s alert for %s: superevent %s', alert_type, graceid,
             superevent_id or 'none')


def process(graceid):
    """Create, join or re-evaluate the superevent of one G event.

    Returns
    -------
    superevent_id : str or None
        The event's superevent, or ``None`` if it is not in one.
    """
    r = rules()
    event = gracedb.get_event(graceid)
    try:
        start, end = r.query_window(event)
    except (KeyError, TypeError, ValueError):
        neighbours = []  # no event time: plan() says why it is ignored
    else:
        # Even an ineligible event may already be a member (its FAR may
        # have been revised upwards), so look for neighbours regardless.
        neighbours = gracedb.get_superevents(f'{start:.6f} .. {end:.6f}')
    action = r.plan(event, neighbours)
    if isinstance(action, Ignore):
        log.info('Not grouping %s: %s', graceid, action.reason)
        return None
    if isinstance(action, Create):
        superevent_id = gracedb.create_superevent(
            graceid, action.t_0, action.t_start, action.t_end,
            category=action.category)['superevent_id']
        log.info('Created superevent %s for %s', superevent_id, graceid)
        return superevent_id
    if isinstance(action, Join):
        gracedb.add_event_to_superevent(action.superevent_id, graceid)
        log.info('Added %s to superevent %s', graceid, action.superevent_id)
        superevent = next(s for s in neighbours
                          if s['superevent_id'] == action.superevent_id)
        _join_update(superevent, event, r)
    else:
        reevaluate(action.superevent_id, r)
    return action.superevent_id


#: Event fields that the rules read.
_REQUIRED = frozenset({'graceid', 'group', 'pipeline', 'gpstime', 'far',
                       'labels', 'instruments', 'extra_attributes'})


def _join_update(superevent, event, r):
    """Update a superevent that ``event`` has just joined.

    Its other members were last evaluated when they changed (each change
    brings an alert that re-evaluates in full), so the new event only has
    to be weighed against the current preferred event and its segment
    united with the superevent's: one fetch instead of one per member.
    """
    preferred_id = superevent.get('preferred_event')
    preferred = superevent.get('preferred_event_data') or {}
    # GraceDb embeds the preferred event in the superevent; fetch it only
    # if that copy is missing or lacks what the ordering reads.
    if preferred.get('graceid') != preferred_id or not _REQUIRED <= set(
            preferred):
        try:
            preferred = gracedb.get_event(preferred_id)
        except Exception as exc:
            if _status(exc) != 404:
                raise
            # The preferred event is gone from GraceDb: weigh everything.
            reevaluate(superevent['superevent_id'], r)
            return
    changes = r.changes(superevent, [preferred, event])
    if changes:
        gracedb.update_superevent(superevent['superevent_id'], **changes)
        log.info('Updated superevent %s: %s', superevent['superevent_id'],
                 changes)


def _member_events(superevent):
    """Fresh JSON of every event of a superevent."""
    members = superevent.get('gw_events') or []
    found = {event['graceid']: event for event in gracedb.get_events(
        f'superevent: {superevent["superevent_id"]}')}
    # Should the search miss a member the superevent lists, fetch it alone.
    return [found.get(graceid) or gracedb.get_event(graceid)
            for graceid in members]


def reevaluate(superevent_id, r=None):
    """Update a superevent's segment, t_0 and preferred event if needed.

    Returns
    -------
    dict
        The fields that were changed (empty if none).
    """
    r = r or rules()
    superevent = gracedb.get_superevent(superevent_id)
    events = _member_events(superevent)
    if not events:
        log.warning('Superevent %s has no events; leaving it alone',
                    superevent_id)
        return {}
    changes = r.changes(superevent, events)
    if changes:
        gracedb.update_superevent(superevent_id, **changes)
        log.info('Updated superevent %s: %s', superevent_id, changes)
    return changes
