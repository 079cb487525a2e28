"""RAVEN: coincidences of superevents with external triggers.

:func:`handle` is an LVAlert handler on the superevent nodes
(:data:`SUPEREVENT_NODES`) and the nodes of external events
(:data:`EXTERNAL_NODES`), on the serial ``exttrig`` queue, acknowledged
only when done:

* a new superevent → the external events in its windows;
* a new external event, or one whose ``NOT_GRB`` label was removed → the
  superevents in its windows;
* ``SKYMAP_READY`` applied to a superevent → the space-time FAR of its
  coincidences that have only a temporal one (:func:`add_space_time`):
  sky maps usually arrive after the coincidence is found.

Which pairs and windows: :mod:`gwcelery.raven_rules`. Each match is
recorded by :func:`record`, which adds the external event to the
superevent's ``em_events``, computes the coincidence false-alarm rates with
`ligo-raven <https://git.ligo.org/lscsoft/raven>`_ (temporal, and
space-time when the superevent has a multi-order sky map and the external
event a localization, see :mod:`gwcelery.external_skymaps`), uploads them as
``coincidence_far.json`` to both, sets the superevent's ``em_type`` and
coincidence FARs when this coincidence is its most significant, and labels
both ``EM_COINC``.

Exactly once: the same pair may be found from both sides, twice, or by a
redelivered alert. :func:`record` holds a Redis lock on the superevent
(:mod:`gwcelery.locks`), so that two recordings never interleave, and reads
GraceDb before each step, doing only what is missing: the membership, the
two log entries (recognized by their comment, which starts with
``RAVEN: coincidence of <superevent> with <event>``) and the labels. A
recording cut short by a crash is completed by the next one; a complete
one is left as it is.
"""
import json
import logging
import math

from celery.signals import celeryd_init

from .. import app, external_skymaps, locks, raven_rules
from . import gracedb, lvalert

__all__ = ('SUPEREVENT_NODES', 'EXTERNAL_NODES', 'handle', 'record',
           'search_from_external', 'search_from_superevent',
           'add_space_time', 'COINCIDENCE_FILE')

log = logging.getLogger(__name__)

#: LVAlert nodes of new superevents.
SUPEREVENT_NODES = ('superevent', 'mdc_superevent', 'test_superevent')

#: LVAlert nodes of external events (``<group>_<pipeline>``, lower case);
#: ``test_snews`` carries the SNEWS drills.
EXTERNAL_NODES = tuple(
    f'external_{pipeline.lower()}'
    for pipeline in sorted(raven_rules.GRB_PIPELINES) + ['SNEWS']) + (
        'test_snews',)

#: The file that holds a coincidence's false-alarm rates.
COINCIDENCE_FILE = 'coincidence_far.json'

#: Multi-order sky maps of superevents, in order of preference; else any
#: ``*.multiorder.fits``.
GW_SKYMAPS = ('bayestar.multiorder.fits',)

#: The label of a superevent whose sky map has arrived.
SKYMAP_LABEL = 'SKYMAP_READY'

#: Seconds the lock of a superevent lives if its holder dies.
LOCK_TTL = 300.0

#: Seconds a recording waits for the lock of its superevent.
LOCK_WAIT = 10.0

_TAGS = ('ext_coinc',)


def _marker(superevent_id, graceid, kind='coincidence'):
    """How the comment of a coincidence's log entry starts (the colon ends
    the id, so that ``E1`` never matches ``E12``)."""
    return f'RAVEN: {kind} of {superevent_id} with {graceid}:'


def _is_superevent_alert(alert):
    return 'superevent_id' in (alert.get('object') or {})


@lvalert.handler(*SUPEREVENT_NODES, *EXTERNAL_NODES, queue='exttrig',
                 shared=False, bind=True, acks_late=True,
                 reject_on_worker_lost=True, ignore_result=True,
                 max_retries=None)
def handle(self, alert):
    """Search for coincidences of a new superevent or external event.

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message.
    """
    try:
        uid, alert_type = alert['uid'], alert['alert_type']
    except (KeyError, TypeError):
        uid = alert_type = None
    if not isinstance(uid, str) or not isinstance(alert_type, str):
        log.error('Ignoring a malformed alert without uid/alert_type: %.200r',
                  alert)
        return
    superevent = _is_superevent_alert(alert)
    data = alert.get('data')
    label = data.get('name') if isinstance(data, dict) else None
    if alert_type == 'new':
        search = search_from_superevent if superevent \
            else search_from_external
    elif (not superevent and alert_type == 'label_removed'
          and label == raven_rules.VETO_LABEL):
        search = search_from_external
    elif (superevent and alert_type == 'label_added'
          and label == SKYMAP_LABEL):
        search = add_space_time
    else:
        log.debug('Ignoring %s alert for %s', alert_type, uid)
        return
    try:
        matches = search(uid)
    except locks.LockTimeout as exc:
        log.info('Coincidence search of %s waits for a lock: %s', uid, exc)
        raise self.retry(exc=exc, countdown=1)
    except Exception as exc:
        gracedb.retry_or_drop(self, exc,
                              f'the coincidence search of {uid}')
        return
    log.info('Coincidence search of %s (%s alert): %s', uid, alert_type,
             ', '.join(matches) or 'no match')


def search_from_external(graceid):
    """Find and record the superevents coincident with an external event.

    Returns
    -------
    list of str
        The superevents matched.
    """
    event = gracedb.get_event(graceid)
    if raven_rules.vetoed(event):
        log.info('%s is labelled %s: kept out of coincidences', graceid,
                 raven_rules.VETO_LABEL)
        return []
    matched = []
    for search in raven_rules.searches_from_external(
            event, raven_rules.windows(app.conf)):
        for superevent in gracedb.get_superevents(search.query):
            if search.matches(superevent):
                sid = superevent['superevent_id']
                record(sid, graceid, search.window)
                matched.append(sid)
    return matched


def search_from_superevent(superevent_id):
    """Find and record the external events coincident with a superevent.

    Returns
    -------
    list of str
        The external events matched.
    """
    superevent = gracedb.get_superevent(superevent_id)
    matched = []
    for search in raven_rules.searches_from_superevent(
            superevent, raven_rules.windows(app.conf)):
        for event in gracedb.get_events(search.query):
            if search.matches(event):
                record(superevent_id, event['graceid'], search.window)
                matched.append(event['graceid'])
    return matched


def record(superevent_id, graceid, window):
    """Record the coincidence of a superevent and an external event, once.

    Parameters
    ----------
    superevent_id, graceid : str
    window : gwcelery.raven_rules.Window
        The window in which they matched.
    """
    # One lock per superevent: its coincidences are recorded one at a time,
    # which also keeps its em_type that of the most significant one.
    with locks.hold(f'raven:{superevent_id}', ttl=LOCK_TTL, wait=LOCK_WAIT):
        superevent = gracedb.get_superevent(superevent_id)
        event = gracedb.get_event(graceid)
        _add_member(superevent, event)
        far, _ = _log_coincidence(superevent, event, window,
                                  _marker(superevent_id, graceid))
        if far is not None:
            _update_superevent(superevent, graceid, far)
        for labels, target in ((event.get('labels'), graceid),
                               (superevent.get('labels'), superevent_id)):
            if 'EM_COINC' not in (labels or ()):
                gracedb.create_label('EM_COINC', target)
    log.info('Recorded the coincidence of %s with %s', superevent_id,
             graceid)


def add_space_time(superevent_id):
    """Add the space-time FAR to the coincidences of a superevent whose
    sky map has just arrived.

    Each coincidence recorded with a temporal FAR only, with an external
    event that has a localization, gets a second log entry (its comment
    starts with ``RAVEN: space-time coincidence of <superevent> with
    <event>:``) and a new version of ``coincidence_far.json`` on both
    sides, once.

    Returns
    -------
    list of str
        The external events whose coincidence gained a space-time FAR.
    """
    done = []
    with locks.hold(f'raven:{superevent_id}', ttl=LOCK_TTL, wait=LOCK_WAIT):
        superevent = gracedb.get_superevent(superevent_id)
        if _gw_skymap(superevent_id) is None:
            log.warning('%s is labelled %s but has no multi-order sky map',
                        superevent_id, SKYMAP_LABEL)
            return done
        prefix = _marker(superevent_id, '')[:-1]
        for entry in gracedb.get_log(superevent_id):
            comment = entry.get('comment', '')
            if not (comment.startswith(prefix)
                    and entry.get('filename') == COINCIDENCE_FILE):
                continue
            graceid = comment[len(prefix):].split(':', 1)[0]
            marker = _marker(superevent_id, graceid, 'space-time coincidence')
            far = json.loads(gracedb.download(
                f'{COINCIDENCE_FILE},{entry["file_version"]}',
                superevent_id))
            event = gracedb.get_event(graceid)
            grb = (event.get('extra_attributes') or {}).get('GRB') or {}
            if (far.get('spatiotemporal_coinc_far') is not None
                    or 'window' not in far
                    or external_skymaps.localization(grb) is None):
                continue
            window = raven_rules.Window(
                'grb', raven_rules.gw_kind(superevent), *far['window'])
            far, wrote = _log_coincidence(superevent, event, window, marker)
            if far is not None:
                _update_superevent(superevent, graceid, far)
            if wrote:
                done.append(graceid)
    return done


def _add_member(superevent, event):
    sid, graceid = superevent['superevent_id'], event['graceid']
    if graceid in (superevent.get('em_events') or ()):
        return
    other = event.get('superevent')
    if other and other != sid:
        # GraceDb keeps an event in one superevent at most.
        log.warning('%s matches %s but is already in superevent %s: not '
                    'added to its em_events', graceid, sid, other)
        return
    try:
        gracedb.add_event_to_superevent(sid, graceid)
    except gracedb.GraceDbError as e:
        if e.status_code != 400:
            raise
        # It joined another superevent since we looked.
        log.warning('%s not added to the em_events of %s: %s', graceid, sid,
                    e.reason)


def _find_record(object_id, marker):
    """The log entry that records a coincidence on one side, or ``None``."""
    return next((entry for entry in gracedb.get_log(object_id)
                 if entry.get('comment', '').startswith(marker)), None)


def _log_coincidence(superevent, event, window, marker):
    """Write the coincidence's log entry (whose comment starts with
    ``marker``), with its FARs, on each side that lacks it.

    Returns
    -------
    far : dict or None
        The FARs (``None`` if there are none).
    wrote : bool
        Whether an entry was written (``False``: both sides had it).
    """
    sid, graceid = superevent['superevent_id'], event['graceid']
    on_superevent = _find_record(sid, marker)
    on_event = _find_record(graceid, marker)
    if on_superevent is not None:
        # Both sides get the same entry: copy what the superevent has.
        comment = on_superevent['comment']
        content = None
        if on_superevent.get('filename') == COINCIDENCE_FILE:
            content = gracedb.download(
                f'{COINCIDENCE_FILE},{on_superevent["file_version"]}', sid)
    else:
        comment, content = _describe(superevent, event, window, marker)
    missing = [target for entry, target in ((on_superevent, sid),
                                            (on_event, graceid))
               if entry is None]
    for target in missing:
        gracedb.upload(content, COINCIDENCE_FILE, target, comment,
                       tags=_TAGS)
    return (json.loads(content) if content is not None else None,
            bool(missing))


def _describe(superevent, event, window, marker):
    """``(comment, coincidence_far.json content or None)``."""
    offset = float(superevent['t_0']) - float(event['gpstime'])
    where = (f'GW − external = {offset:+.3f} s, in the window '
             f'[{window.start:+g}, {window.end:+g}] s')
    if window.external_kind != 'grb':
        # ligo-raven knows the rates of GRB missions only.
        return (f'{marker} {where}; no coincidence FAR (no rate of '
                f'{event.get("pipeline")} alerts to compute it with)', None)
    result, note = _coincidence_far(superevent, event, window)
    if isinstance(result, str):
        return f'{marker} {where}; no coincidence FAR: {result}', None
    far = dict(result)
    far['superevent_id'] = superevent['superevent_id']
    far['window'] = [window.start, window.end]
    spatial = far.get('spatiotemporal_coinc_far')
    summary = (f'temporal FAR {far["temporal_coinc_far"]:.3g} Hz'
               + (f', space-time FAR {spatial:.3g} Hz' if spatial is not None
                  else ''))
    return (f'{marker} {where}; {summary}{note}',
            json.dumps(far, default=float).encode())


def _gw_skymap(superevent_id):
    names = {entry.get('filename') for entry in gracedb.get_log(superevent_id)
             if entry.get('filename')}
    for name in GW_SKYMAPS:
        if name in names:
            return name
    return min((n for n in names if n.endswith('.multiorder.fits')),
               default=None)


def _external_localization(event):
    """``(kind, fits file name)`` of an external event's localization,
    making and uploading its sky map if it needs one."""
    grb = (event.get('extra_attributes') or {}).get('GRB') or {}
    kind = external_skymaps.localization(grb)
    if kind != 'map':
        return kind, None
    graceid = event['graceid']
    if not any(entry.get('filename') == external_skymaps.FILENAME
               for entry in gracedb.get_log(graceid)):
        skymap = external_skymaps.gaussian_skymap(
            grb['ra'], grb['dec'], grb['error_radius'], objid=graceid)
        gracedb.upload(skymap, external_skymaps.FILENAME, graceid,
                       'Sky map of the position in the GCN notice (a '
                       'Gaussian of the error radius)', tags=('sky_loc',))
    return kind, external_skymaps.FILENAME


def _coincidence_far(superevent, event, window):
    """ligo-raven's coincidence FARs: ``(dict or message, note)``."""
    from ligo.raven.search import coinc_far

    sid, graceid = superevent['superevent_id'], event['graceid']
    gw_skymap = _gw_skymap(sid)
    kind, ext_skymap = (_external_localization(event) if gw_skymap
                        else (None, None))
    common = dict(grb_search=event.get('search') or 'GRB',
                  gracedb=gracedb.client(), se_dict=superevent,
                  ext_dict=event)
    note = ''
    if gw_skymap and kind:
        try:
            result = coinc_far(
                sid, graceid, window.start, window.end, incl_sky=True,
                se_fitsfile=gw_skymap, se_moc=True, se_nested=True,
                ext_fitsfile=ext_skymap, ext_moc=False, ext_nested=True,
                use_radec=kind == 'point', **common)
        except Exception as e:
            if gracedb.is_transient(e):
                raise
            # An unreadable sky map must not cost the coincidence itself.
            result = f'{type(e).__name__}: {e}'
        if not isinstance(result, str) and not math.isfinite(
                result['spatiotemporal_coinc_far']):
            result = 'the sky maps do not overlap'
        if not isinstance(result, str):
            return result, ''
        note = f' (no space-time FAR: {result})'
    result = coinc_far(sid, graceid, window.start, window.end,
                       incl_sky=False, **common)
    return result, note


def _update_superevent(superevent, graceid, far):
    """Make this coincidence the superevent's own if it is its most
    significant (the lowest temporal FAR) or already its own."""
    temporal = far.get('temporal_coinc_far')
    spatial = far.get('spatiotemporal_coinc_far')
    current = superevent.get('time_coinc_far')
    if temporal is None:
        return
    if superevent.get('em_type') == graceid:
        if (current, superevent.get('space_coinc_far')) == (temporal,
                                                             spatial):
            return
    elif current is not None and current <= temporal:
        return
    gracedb.update_superevent(
        superevent['superevent_id'], em_type=graceid,
        time_coinc_far=temporal, space_coinc_far=spatial)


@celeryd_init.connect
def _preload(options=None, **kwargs):
    """Import ligo-raven (and ligo.skymap, astropy) when an exttrig worker
    starts, before its pool forks, rather than during the first
    coincidence."""
    queues = (options or {}).get('queues') or ()
    if isinstance(queues, str):
        queues = queues.split(',')
    if 'exttrig' in queues:
        import ligo.raven.search  # noqa: F401
