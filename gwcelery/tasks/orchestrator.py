"""The orchestrator: what happens to candidates once GraceDb has them.

Event level: CBC events
-----------------------
:func:`handle_cbc_event` listens on the CBC pipelines' LVAlert nodes
(:data:`CBC_NODES`). For each new CBC event it starts the source
classification (:data:`CLASSIFIERS`, beside the localization, since they
need only the event's JSON) and, as soon as the event has both its
``coinc.xml`` and a PSD, the sky localization :func:`localize_event`:

* on the ``new`` alert, if ``coinc.xml`` carries its own PSDs;
* otherwise on the ``log`` alert of the ``psd.xml.gz`` upload, with that
  version of the file.

:func:`localize_event` runs on the ``openmp`` queue and does the whole
critical path in one task, so that no file crosses the broker: it
downloads the files from GraceDb, runs BAYESTAR
(:mod:`gwcelery.tasks.bayestar`), uploads :data:`SKYMAP_FILENAME` tagged
``sky_loc``, labels the event ``SKYMAP_READY`` and only then starts the
sky-map products (:func:`skymap_products`), which download the map
themselves, off the critical path.

Once only. Each of the sky map, its products and the classification of an
event is guarded by a claim (:mod:`gwcelery.claims`) under the task's id.
A redelivered alert, or a second trigger (a coinc with PSDs *and* a
psd.xml.gz), finds the claim busy or done and does nothing. A task whose
worker died comes back (the tasks are acknowledged late) with the same id,
finds the claim its own or expired, and before localizing looks in the
event's GraceDb log for a sky map already uploaded, which it then adopts:
so a death between the upload and the record of it does not upload the map
twice, and a death anywhere before the upload does not lose it. A failed
localization releases its claim, so that a later psd.xml.gz may try again.

Bad input (an empty or malformed coinc.xml or PSD, a missing PSD, a single
detector, a coinc that ligo.skymap cannot read, a non-CBC event on a CBC
node, a localization that fails) is reported in the worker log and as a
log entry on the event, and nothing else happens; the worker goes on.

Superevent level: notices
-------------------------
:func:`handle_superevent` listens on the superevent nodes
(:data:`SUPEREVENT_NODES`) and says when a notice is due; the notices
themselves are made and sent, once each, by :mod:`gwcelery.tasks.notices`
(the whole chain, its labels and settings: :doc:`/alerts`):

* ``new``: :data:`~gwcelery.conf.orchestrator_timeout` seconds later,
  :func:`~gwcelery.tasks.notices.start_preliminary` takes the preferred
  event for the preliminary notice, which goes out once that event has
  its products (a second one may follow
  :data:`~gwcelery.conf.superevent_clean_up_timeout` seconds after);
* ``label_added`` ``ADVOK``: the initial notice; ``ADVNO``: the
  retraction; ``PE_READY``: an update, if the initial notice was sent;
* ``log`` with a sky map while labelled ``PE_READY``: an update.

:func:`handle_event_products` wakes the notices waiting for an event's
products when one of its completeness labels is applied.
"""
import functools
import logging

from celery import group

from .. import app, claims, notice_records, notice_rules, timeline
from . import (bayestar, em_bright, gracedb, lvalert, notices, p_astro,
               skymaps, superevents)
from .timeline import note

__all__ = ('CBC_PIPELINES', 'CBC_NODES', 'SKYMAP_FILENAME', 'SKYMAP_TAGS',
           'SKYMAP_LABEL', 'CLASSIFIERS', 'skymap_products',
           'handle_cbc_event', 'localize_event', 'is_cbc', 'report',
           'SUPEREVENT_NODES', 'handle_superevent', 'handle_event_products')

log = logging.getLogger(__name__)

# -- Event level: CBC events ---------------------------------------------------

#: Pipelines whose events are compact binaries (lower case, as in nodes).
CBC_PIPELINES = ('gstlal', 'pycbc', 'spiir', 'mbtaonline')

#: The LVAlert nodes of CBC events, which are the superevent manager's
#: nodes of these pipelines (production ``cbc_*`` and ``test_*``; MDC
#: events come on the production nodes).
CBC_NODES = tuple(node for node in superevents.NODES
                  if node.partition('_')[2] in CBC_PIPELINES)

#: File name of the BAYESTAR sky map in GraceDb.
SKYMAP_FILENAME = 'bayestar.multiorder.fits'

#: Tags of its log entry.
SKYMAP_TAGS = ('sky_loc',)

#: Label applied once it is there.
SKYMAP_LABEL = 'SKYMAP_READY'

#: Tasks started for each new CBC event with the event's JSON; they run
#: beside the localization.
CLASSIFIERS = (em_bright.classify_event, p_astro.classify_event)


def skymap_products(filename, graceid):
    """The products started for each new sky map, off the critical path:
    :func:`gwcelery.tasks.skymaps.annotate` (annotation, all-sky plot,
    volume rendering), each downloading that version of the map itself
    rather than receiving it through the broker."""
    return skymaps.annotate(None, filename, graceid, SKYMAP_TAGS)


#: Names of the claims (see :mod:`gwcelery.claims`).
_SKYMAP, _PRODUCTS, _CLASSIFICATION = (
    SKYMAP_FILENAME, 'skymap-products', 'classification')

#: Lease of the claims that only cover sending a canvas.
_SEND_LEASE = 60.0


def is_cbc(event):
    """Whether an event's JSON is that of a compact-binary candidate (read
    from a coinc.xml: it has ``CoincInspiral`` attributes)."""
    extra = (event or {}).get('extra_attributes') or {}
    return isinstance(extra, dict) and isinstance(
        extra.get('CoincInspiral'), dict)


def report(graceid, message):
    """Say why something could not be done: in the worker log and, through
    a (retried) task, in the event's GraceDb log."""
    log.error('%s: %s', graceid, message)
    gracedb.upload.delay(None, None, graceid, message,
                         tags=list(SKYMAP_TAGS))


def _retry_later(task, exc, what):
    """Retry ``task`` after a transient GraceDb failure, with back-off."""
    delay = min(2 ** task.request.retries, 60)
    log.warning('GraceDb failed while %s (%s: %s); trying again in %d s',
                what, type(exc).__name__, exc, delay)
    raise task.retry(exc=exc, countdown=delay,
                     max_retries=app.conf.gracedb_max_retries)


def _send_once(graceid, what, owner, canvas):
    """Send a canvas unless ``what`` was sent already."""
    held = claims.claim(graceid, what, owner, _SEND_LEASE)
    if held.state != 'mine':
        log.info('%s: %s already %s', graceid, what,
                 'sent' if held.state == 'done' else 'being sent')
        return False
    canvas.apply_async()
    claims.finish(graceid, what)
    return True


def _start_classification(graceid, event, owner):
    canvas = group(task.si(event) for task in CLASSIFIERS)
    if _send_once(graceid, _CLASSIFICATION, owner, canvas):
        log.info('%s: started classification: %s', graceid,
                 ', '.join(task.name for task in CLASSIFIERS))


@lvalert.handler(*CBC_NODES, bind=True, shared=False, acks_late=True,
                 reject_on_worker_lost=True, ignore_result=True)
def handle_cbc_event(self, alert):
    """Start what a CBC event's alert calls for (see the module's
    documentation).

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message: ``uid``, ``alert_type``, ``data``
        (for ``log``, the log entry) and ``object`` (the event).
    """
    try:
        graceid = alert['uid']
        alert_type = alert['alert_type']
        data = alert.get('data') or {}
        event = alert.get('object') or {}
    except (KeyError, TypeError, AttributeError):
        graceid = alert_type = None
    if not isinstance(graceid, str) or not isinstance(alert_type, str):
        log.error('Ignoring a malformed alert without uid/alert_type: %.200r',
                  alert)
        return
    if alert_type == 'new':
        if not is_cbc(event):
            report(graceid, 'Not a compact-binary event (no CoincInspiral '
                            'attributes): no BAYESTAR sky map and no source '
                            'classification.')
            return
        _start_classification(graceid, event, self.request.id)
        try:
            coinc = gracedb.client().files(graceid, 'coinc.xml').read()
        except Exception as exc:
            if gracedb.is_transient(exc):
                _retry_later(self, exc, f'reading coinc.xml of {graceid}')
            report(graceid, f'BAYESTAR cannot localize this event: cannot '
                            f'read its coinc.xml ({exc})')
            return
        try:
            with_psd = bayestar.carries_psd(coinc)
        except bayestar.LocalizationError as e:
            report(graceid, f'BAYESTAR cannot localize this event: {e}')
            return
        if with_psd:
            localize_event.delay(graceid)
        else:
            log.info('%s: coinc.xml has no PSD; waiting for psd.xml.gz',
                     graceid)
    elif alert_type == 'log' and isinstance(data, dict) \
            and data.get('filename') == 'psd.xml.gz':
        if not is_cbc(event):
            log.info('%s: ignoring psd.xml.gz of a non-CBC event', graceid)
            return
        version = data.get('file_version')
        filename = ('psd.xml.gz' if version is None
                    else f'psd.xml.gz,{version}')
        localize_event.delay(graceid, filename)


def _wake_notices(graceid):
    """Try the notices waiting for this event's products now, rather than
    only when the label's LVAlert comes back: that round trip is on the
    way to the first notice. (The alert still comes, and
    :func:`handle_event_products` finds the notice started.)"""
    for superevent_id, kind in notice_records.waiting(graceid):
        try:
            notices.try_send(superevent_id, kind)
        except Exception:
            log.exception('%s: could not try the %s notice of %s; the '
                          'label alert will', graceid, kind, superevent_id)


def _existing_skymap(graceid):
    """Versioned name of a sky map already in the event's log, or None."""
    for entry in reversed(gracedb.client().logs(graceid).json()['log']):
        if entry.get('filename') == SKYMAP_FILENAME:
            return f'{SKYMAP_FILENAME},{entry.get("file_version") or 0}'
    return None


def _download(graceid, filename):
    try:
        return gracedb.client().files(graceid, filename).read()
    except Exception as exc:
        status = getattr(getattr(exc, 'response', None), 'status_code', None)
        if status == 404:
            raise bayestar.MalformedInputError(
                f'the event has no {filename.partition(",")[0]}') from None
        raise


def _make_skymap(graceid, coinc, psd):
    """Localize and upload; the sky map's versioned name."""
    # The localize task's own code, run here: the files stay in this
    # process instead of crossing the broker twice.
    timeline.record(graceid, 'localization_started')
    fits = bayestar.localize(coinc, graceid, psd)
    timeline.record(graceid, 'localization_finished')
    entry = gracedb.client().write_log(
        graceid, f'BAYESTAR sky map (waveform {app.conf.bayestar_waveform})',
        filename=SKYMAP_FILENAME, filecontents=fits,
        tag_name=list(SKYMAP_TAGS)).json()
    timeline.record(graceid, 'skymap_uploaded')
    return f'{SKYMAP_FILENAME},{entry.get("file_version") or 0}'


@app.task(queue='openmp', bind=True, shared=False, acks_late=True,
          reject_on_worker_lost=True, ignore_result=True)
def localize_event(self, graceid, psd_filename=None):
    """Make an event's BAYESTAR sky map, once, and what follows from it.

    Parameters
    ----------
    graceid : str
        The event.
    psd_filename : str, optional
        The (versioned) ``psd.xml.gz`` to use; without it, the PSDs of
        ``coinc.xml``.
    """
    owner = self.request.id
    held = claims.claim(graceid, _SKYMAP, owner, app.conf.skymap_lease)
    if held.state == 'busy':
        log.info('%s: task %s is making the sky map already', graceid,
                 held.detail)
        return
    try:
        if held.state == 'done':
            filename = held.detail
            log.info('%s: sky map %s made already', graceid, filename)
        else:
            # The look in the log and the downloads at once: they are on
            # the path to the first notice.
            calls = [functools.partial(_existing_skymap, graceid),
                     functools.partial(_download, graceid, 'coinc.xml')]
            if psd_filename is not None:
                calls.append(functools.partial(_download, graceid,
                                               psd_filename))
            filename, coinc, *psd = gracedb.concurrently(*calls)
            if filename is None:
                filename = _make_skymap(graceid, coinc, psd[0] if psd
                                        else None)
                log.info('%s: uploaded %s', graceid, filename)
            else:
                log.info('%s: %s is in GraceDb already', graceid, filename)
            claims.finish(graceid, _SKYMAP, filename)
        gracedb.client().write_label(graceid, SKYMAP_LABEL)
    except Exception as exc:
        if (gracedb.is_transient(exc)
                and self.request.retries < app.conf.gracedb_max_retries):
            # Keep the claim: the retry has this task's id.
            _retry_later(self, exc, f'making the sky map of {graceid}')
        claims.release(graceid, _SKYMAP, owner)
        if isinstance(exc, bayestar.LocalizationError):
            report(graceid, f'BAYESTAR cannot localize this event: {exc}')
            return
        report(graceid, f'The BAYESTAR sky map could not be made: '
                        f'{type(exc).__name__}: {exc}')
        raise
    log.info('%s: %s labelled', graceid, SKYMAP_LABEL)
    _wake_notices(graceid)
    canvas = skymap_products(filename, graceid)
    if _send_once(graceid, _PRODUCTS, owner, canvas):
        log.info('%s: started sky-map products: %s', graceid,
                 ', '.join(sig.task for sig in canvas.tasks))


# -- Superevent level: notices --------------------------------------------------

#: LVAlert nodes of superevents (production, MDC, Test).
SUPEREVENT_NODES = ('superevent', 'mdc_superevent', 'test_superevent')

def _product_labels():
    """Labels of events whose application may complete a waiting notice."""
    return {label for labels in app.conf.superevent_complete_labels.values()
            for label in labels}


def _alert_fields(alert):
    """``(uid, alert_type, data, object)`` of an alert, or ``None``."""
    try:
        uid, alert_type = alert['uid'], alert['alert_type']
        data = alert.get('data') or {}
        obj = alert.get('object') or {}
    except (KeyError, TypeError, AttributeError):
        return None
    if not (isinstance(uid, str) and isinstance(alert_type, str)
            and isinstance(data, dict) and isinstance(obj, dict)):
        return None
    return uid, alert_type, data, obj


def _superevent_new(superevent_id, superevent, owner):
    note(superevent_id, 'alert_received')
    created = timeline.parse_gracedb_time(superevent.get('created'))
    if created is not None:
        note(superevent_id, 'created', when=created)
    timer = notices.start_preliminary.signature(
        (superevent_id, 1), countdown=app.conf.orchestrator_timeout)
    if _send_once(superevent_id, 'preliminary-timer', owner, timer):
        log.info('%s: preliminary notice in %s s', superevent_id,
                 app.conf.orchestrator_timeout)


def _superevent_label(superevent_id, label, superevent):
    if label == 'ADVOK':
        notices.request(superevent_id, notice_rules.INITIAL,
                        superevent.get('preferred_event_data'))
    elif label == 'ADVNO':
        notices.request(superevent_id, notice_rules.RETRACTION)
    elif label == notices.PE_READY:
        if notices.maybe_update(superevent_id, superevent) is None:
            log.info('%s: %s, and no update is due (none before the '
                     'initial notice, one per sky map)', superevent_id,
                     label)


@lvalert.handler(*SUPEREVENT_NODES, bind=True, shared=False, acks_late=True,
                 reject_on_worker_lost=True, max_retries=None)
def handle_superevent(self, alert):
    """Request the notices that a superevent's alert calls for (see the
    module's documentation).

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message: ``uid`` (the superevent),
        ``alert_type``, ``data`` (the label, the log entry, …) and
        ``object`` (the superevent).
    """
    fields = _alert_fields(alert)
    if fields is None:
        log.error('Ignoring a malformed superevent alert: %.200r', alert)
        return
    superevent_id, alert_type, data, superevent = fields
    try:
        if alert_type == 'new':
            _superevent_new(superevent_id, superevent, self.request.id)
        elif alert_type == 'label_added':
            _superevent_label(superevent_id, data.get('name'), superevent)
        elif (alert_type == 'log'
              and notice_rules.is_skymap(data.get('filename'))
              and notices.PE_READY in (superevent.get('labels') or ())):
            notices.maybe_update(superevent_id, superevent)
    except Exception as exc:
        _retry_transient(self, exc, f'handling {alert_type} of '
                                    f'{superevent_id}')
        raise


def _retry_transient(task, exc, what):
    """Retry ``task`` after a transient GraceDb failure, with back-off and
    without limit: a notice that a handler was asked for must not be lost
    while GraceDb is away."""
    if gracedb.is_transient(exc):
        delay = gracedb.retry_delay(task.request.retries)
        log.warning('GraceDb failed while %s (%s: %s); trying again in '
                    '%.1f s', what, type(exc).__name__, exc, delay)
        raise task.retry(exc=exc, countdown=delay, max_retries=None)


@lvalert.handler(*superevents.NODES, bind=True, shared=False, acks_late=True,
                 reject_on_worker_lost=True, max_retries=None)
def handle_event_products(self, alert):
    """Try the notices waiting for an event's products when one of its
    completeness labels (:data:`~gwcelery.conf.superevent_complete_labels`)
    is applied.

    Parameters
    ----------
    alert : dict
        The decoded LVAlert message about an event.
    """
    fields = _alert_fields(alert)
    if fields is None or fields[1] != 'label_added' \
            or fields[2].get('name') not in _product_labels():
        return
    graceid, _, _, event = fields
    for superevent_id, kind in notice_records.waiting(graceid):
        try:
            notices.try_send(superevent_id, kind, event)
        except Exception as exc:
            _retry_transient(self, exc, f'trying the {kind} notice of '
                                        f'{superevent_id}')
            raise
