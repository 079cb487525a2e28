"""Notices to GCN: preliminary, initial, update and retraction.

The LVAlert handlers of :mod:`gwcelery.tasks.orchestrator` decide *when*
a notice is due and call :func:`request`; this module makes and sends it,
once (see :doc:`/alerts` for the whole chain and the rules)::

    request(S, kind, event) ─ pin: the event and a deadline, once
        │
    try_send ── the event's products not all there, deadline ahead:
        │       wait (a label on the event, or the deadline, tries again)
        ▼
    send_notice (claims S/kind) ─ refused (Test, ADVNO, FAR …) ─▶ skip
        │ copy the event's sky map, em_bright.json, p_astro.json to S
        │ create the VOEvent once (create_voevent_once), download it
        ▼
    voevent.send(xml, once=True) ──▶ record_sent: labels, log, timeline

GraceDb is called through the tasks of :mod:`gwcelery.tasks.gracedb`,
as functions (the task that calls them retries). Every step can run
again. The claim of ``S/kind`` (a Redis key under
the task's id, :mod:`gwcelery.claims`) lets one :func:`send_notice` at a
time work on a notice; a task of a killed worker comes back with its id
(acknowledged late) and finds it its own. Copies and log entries are
looked for in the superevent's log before they are written. The VOEvent
is created under a per-superevent lock, after its place among the
superevent's VOEvents of its type is written to Redis
(:mod:`gwcelery.notice_records`), so that a task killed after GraceDb
created it adopts that VOEvent instead of creating another. The broadcast
itself is once per IVORN (:func:`gwcelery.tasks.voevent.send`).
"""
import functools
import json
import logging
import time

from .. import app, claims, notice_records, notice_rules, timeline
from ..superevent_rules import Rules
from . import em_bright, gracedb, p_astro, voevent
from .timeline import note

__all__ = ('PRELIMINARY_LABELS', 'PRODUCTS', 'TAGS', 'NoticeTask', 'request',
           'try_send',
           'send_notice', 'create_voevent_once', 'record_sent',
           'start_preliminary', 'try_notice', 'maybe_update',
           'update_kind', 'send_update', 'latest_skymap')

log = logging.getLogger(__name__)

#: Labels of a superevent once a preliminary notice has been sent.
PRELIMINARY_LABELS = ('GCN_PRELIM_SENT', 'ADVREQ')

#: Files copied from an event to its superevent for a notice, with the
#: label each gets there.
PRODUCTS = {'bayestar.multiorder.fits': 'SKYMAP_READY',
            em_bright.FILENAME: em_bright.LABEL,
            p_astro.FILENAME: p_astro.LABEL}

#: Tags of the superevent's log entries about notices.
TAGS = ('em_follow',)

#: Tags of the copies, by file.
_COPY_TAGS = {'bayestar.multiorder.fits': ('sky_loc', 'public'),
              em_bright.FILENAME: em_bright.TAGS + ('public',),
              p_astro.FILENAME: p_astro.TAGS + ('public',)}

#: Label of a superevent whose parameter estimation is done.
PE_READY = 'PE_READY'

#: Seconds the lock on creating a superevent's VOEvents is held at most.
_CREATE_LEASE = 60.0


class NoticeTask(gracedb.GraceDbTask):
    """Base class of the notice tasks: acknowledged late, and retried for
    as long as GraceDb fails for a transient reason, so that no notice is
    lost while GraceDb is away."""

    retry_forever = True


def _task(**options):
    return app.task(base=NoticeTask, shared=False, **options)


def _rules():
    return Rules.from_conf(app.conf)


def _log_once(superevent_id, comment, logs=None, tags=TAGS):
    """Write a comment to the superevent's log unless it is there."""
    if logs is None:
        logs = gracedb.get_log(superevent_id)
    if any(entry.get('comment') == comment for entry in logs):
        return
    gracedb.upload(None, None, superevent_id, comment, list(tags))


# -- when: pinning and waiting -------------------------------------------------

def _pin(superevent_id, kind, event):
    """Pin the notice to ``event`` (or to none) once; the record."""
    now = time.time()
    graceid = (event or {}).get('graceid') or ''
    waits = bool(graceid) and notice_rules.carries_event_products(kind)
    deadline = now + float(app.conf.orchestrator_products_timeout) \
        if waits else now
    record, new = notice_records.pin(
        superevent_id, kind, preferred_event=graceid, pinned_at=now,
        deadline=deadline, voevent_type=notice_rules.voevent_type(kind))
    if not new:
        return record
    note(superevent_id, f'{kind}/requested', when=now)
    if graceid:
        note(superevent_id, f'{kind}/preferred_event', graceid, when=now)
        uploaded = timeline.parse_gracedb_time(event.get('created'))
        if uploaded is not None:
            timeline.record(graceid, 'uploaded', when=uploaded)
    if waits:
        notice_records.wait(graceid, superevent_id, kind)
        # Should the event never be complete, go on without.
        try_notice.apply_async((superevent_id, kind),
                               countdown=app.conf.orchestrator_products_timeout)
    return record


def request(superevent_id, kind, event=None):
    """Ask for a notice: pin it to ``event`` (the JSON of the event whose
    products it carries, if any), unless it was pinned before, and send it
    as soon as it may go (:func:`try_send`)."""
    _pin(superevent_id, kind, event)
    return try_send(superevent_id, kind, event)


def try_send(superevent_id, kind, event=None):
    """Start :func:`send_notice` if the notice may go now: its event has
    all its products (:meth:`~gwcelery.superevent_rules.Rules.is_complete`)
    or its deadline has passed.

    Parameters
    ----------
    event : dict, optional
        The pinned event's JSON if the caller has it fresh.

    Returns
    -------
    bool
        Whether the notice was started.
    """
    record = notice_records.get(superevent_id, kind)
    if record.get('state'):
        log.info('%s: %s notice already %s', superevent_id, kind,
                 record['state'])
        return False
    if not record:
        return False
    graceid = record.get('preferred_event')
    if graceid and notice_rules.carries_event_products(kind):
        if not event or event.get('graceid') != graceid:
            event = gracedb.get_event(graceid)
        complete = _rules().is_complete(event)
        if not complete and time.time() < float(record['deadline']):
            log.info('%s: %s waits for the products of %s', superevent_id,
                     kind, graceid)
            return False
        if complete:
            note(superevent_id, f'{kind}/products_ready', graceid)
        notice_records.stop_waiting(graceid, superevent_id, kind)
    send_notice.delay(superevent_id, kind)
    return True


@_task(ignore_result=True)
def try_notice(superevent_id, kind):
    """:func:`try_send`, at a notice's deadline."""
    try_send(superevent_id, kind)


@_task(ignore_result=True)
def start_preliminary(superevent_id, n):
    """Take the superevent's preferred event for its ``n``-th preliminary
    notice (the second only if the preferred event changed since the
    first) and request it."""
    superevent = gracedb.get_superevent(superevent_id)
    event = superevent.get('preferred_event_data') or {}
    kind = notice_rules.preliminary(n)
    if n > 1:
        first = notice_records.get(superevent_id, notice_rules.preliminary(1))
        if first.get('preferred_event') == event.get('graceid'):
            log.info('%s: the preferred event is still %s: no second '
                     'preliminary notice', superevent_id, event.get('graceid'))
            return
    request(superevent_id, kind, event)


def latest_skymap(logs, name=None):
    """``(name, version)`` of the latest sky map in a log (named ``name``,
    if given), or ``None``."""
    for entry in reversed(logs):
        filename = entry.get('filename') or ''
        if (filename == name if name else notice_rules.is_skymap(filename)):
            return filename, int(entry.get('file_version') or 0)
    return None


def update_kind(superevent_id, skymap=None):
    """The kind of an update with the superevent's latest sky map (or its
    latest version of ``skymap``).

    Raises
    ------
    ValueError
        The superevent has no such sky map.
    """
    logs = gracedb.get_log(superevent_id)
    found = latest_skymap(logs, skymap)
    if found is None:
        raise ValueError(f'{superevent_id} has no sky map'
                         + (f' named {skymap}' if skymap else ''))
    return notice_rules.update(f'{found[0]},{found[1]}')


def maybe_update(superevent_id, superevent=None):
    """Request an update if the superevent is labelled ``PE_READY``, its
    initial notice was sent and it has a sky map newer than that
    notice's; return its kind or ``None``."""
    records = notice_records.all_of(superevent_id)
    initial = records.get(notice_rules.INITIAL, {})
    if initial.get('state') != 'sent':
        return None
    if superevent is None:
        superevent = gracedb.get_superevent(superevent_id)
    if PE_READY not in (superevent.get('labels') or ()):
        return None
    logs = gracedb.get_log(superevent_id)
    found = latest_skymap(logs)
    if found is None or f'{found[0]},{found[1]}' == initial.get('skymap'):
        return None
    kind = notice_rules.update(f'{found[0]},{found[1]}')
    request(superevent_id, kind)
    return kind


@app.task(shared=False, ignore_result=False)
def send_update(superevent_id, skymap=None):
    """Request an update with the superevent's latest sky map (or its
    latest version of ``skymap``), for ``gwcelery alerts send-update``.

    Returns
    -------
    dict
        ``kind``, the update's kind, and ``state``, what had become of it
        before this request (``''``, ``'sent'``, ``'skipped'``).

    Raises
    ------
    ValueError
        The superevent has no such sky map.
    """
    kind = update_kind(superevent_id, skymap)
    state = notice_records.get(superevent_id, kind).get('state', '')
    request(superevent_id, kind)
    return {'kind': kind, 'state': state}


# -- what: products ------------------------------------------------------------

def _copy_event_products(superevent_id, graceid, superevent_logs,
                         event_logs):
    """Copy the event's latest products to the superevent unless they are
    there already.

    The downloads go at once; so do the uploads, except those of the
    classification files, which no VOEvent needs to exist first.

    Returns
    -------
    products : dict
        ``{name: (versioned name on the superevent, content)}``.
    later : list of callable
        The uploads left to do.
    """
    latest = {}
    for entry in event_logs:
        if entry.get('filename') in PRODUCTS:
            latest[entry['filename']] = int(entry.get('file_version') or 0)
    # The superevent's latest version of each name, and the copies it has.
    newest, copies = {}, {}
    for entry in superevent_logs:
        if entry.get('filename'):
            version = int(entry.get('file_version') or 0)
            newest[entry['filename']] = version
            copies[entry.get('comment')] = version
    names = sorted(latest)
    contents = dict(zip(names, gracedb.concurrently(*(
        functools.partial(gracedb.download, f'{name},{latest[name]}',
                          graceid)
        for name in names))))
    products, now, later = {}, {}, []
    for name in names:
        comment = f'Copied from {graceid}: {name},{latest[name]}'
        copied = copies.get(comment)
        # The sky map's VOEvent link names the latest version: a copy that
        # is no longer the latest is made again.
        skymap = notice_rules.is_skymap(name)
        if copied is None or (skymap and copied != newest.get(name)):
            upload = functools.partial(
                gracedb.upload, contents[name], name, superevent_id, comment,
                list(_COPY_TAGS[name]))
            if skymap:
                now[name] = upload
                continue
            later.append(upload)
        # A classification copy's version is not needed, only its content.
        products[name] = (name if copied is None else f'{name},{copied}',
                          contents[name])
    for name, entry in zip(now, gracedb.concurrently(*now.values())):
        version = int(entry.get('file_version') or 0)
        products[name] = (f'{name},{version}', contents[name])
    return products, later


def _superevent_products(superevent_id, logs, skymap=None):
    """The superevent's own latest sky map (or ``skymap``, versioned) and
    classification files, as :func:`_copy_event_products` returns them."""
    result = {}
    found = skymap.rsplit(',', 1) if skymap else latest_skymap(logs)
    if found:
        result[found[0]] = (f'{found[0]},{found[1]}', None)
    versions = {}
    for name in (em_bright.FILENAME, p_astro.FILENAME):
        version = next((entry.get('file_version') for entry in reversed(logs)
                        if entry.get('filename') == name), None)
        if version is not None:
            versions[name] = f'{name},{version}'
    for (name, versioned), content in zip(versions.items(), (
            gracedb.concurrently(*(functools.partial(
                gracedb.download, versioned, superevent_id)
                for versioned in versions.values())))):
        result[name] = (versioned, content)
    return result


def _json(content):
    try:
        value = json.loads(content)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _products(superevent_id, kind, superevent, record, logs, event_logs):
    """The products a notice carries, ``{name: (versioned name, content)}``,
    and the uploads of copies left to do (see
    :func:`_copy_event_products`)."""
    labels = set(superevent.get('labels') or ())
    if kind.startswith('update:'):
        return _superevent_products(superevent_id, logs,
                                    kind[len('update:'):]), []
    if kind == notice_rules.INITIAL and PE_READY in labels:
        return _superevent_products(superevent_id, logs), []
    graceid = record.get('preferred_event')
    if notice_rules.carries_event_products(kind) and graceid:
        return _copy_event_products(superevent_id, graceid, logs,
                                    event_logs)
    return {}, []


# -- how: the VOEvent, once ----------------------------------------------------

def create_voevent_once(task, superevent_id, kind, options, skymap=None):
    """The notice's VOEvent: created in GraceDb unless it was already.

    Under a lock on the superevent's VOEvent creation (held by ``task``'s
    id), the notice's place among the superevent's VOEvents of its type is
    written to its record before GraceDb is asked; a task that finds a
    place but no VOEvent in its record (its predecessor was killed after
    asking) takes the VOEvent in that place, unless another notice has it.

    Parameters
    ----------
    task : celery.Task
        The running task (its id holds the lock).
    superevent_id, kind : str
    options : dict
        Keyword arguments of ``create_voevent``
        (:func:`gwcelery.notice_rules.voevent_options`).
    skymap : str, optional
        The versioned name of the sky map it carries, for the record.

    Returns
    -------
    dict
        The notice's record (:func:`gwcelery.notice_records.get`), with
        ``N``, ``ivorn``, ``filename``, ``file_version``.
    """
    record = notice_records.get(superevent_id, kind)
    if record.get('N'):
        return record
    owner = task.request.id
    deadline = time.monotonic() + _CREATE_LEASE
    while claims.claim(superevent_id, 'voevent-creation', owner,
                       _CREATE_LEASE).state != 'mine':
        if time.monotonic() > deadline:
            raise RuntimeError(f'{superevent_id}: the lock on creating '
                               'VOEvents stayed taken')
        time.sleep(0.05)
    try:
        voevent_type = notice_rules.voevent_type(kind)
        existing = [v for v in gracedb.get_voevents(superevent_id)
                    if v.get('voevent_type') == voevent_type]
        records = notice_records.all_of(superevent_id)
        ordinal = int(records.get(kind, {}).get('ordinal') or 0)
        if ordinal and len(existing) >= ordinal and not \
                notice_records.ordinal_taken(records, voevent_type, ordinal,
                                             kind):
            created = existing[ordinal - 1]
            log.warning('%s: %s adopts VOEvent %s, created by an attempt '
                        'that stopped before recording it', superevent_id,
                        kind, created['ivorn'])
        else:
            notice_records.update(superevent_id, kind,
                                  voevent_type=voevent_type,
                                  ordinal=len(existing) + 1)
            created = gracedb.create_voevent(superevent_id, voevent_type,
                                             **options)
        notice_records.update(
            superevent_id, kind, N=created['N'], ivorn=created['ivorn'],
            filename=created['filename'],
            file_version=created.get('file_version') or 0, skymap=skymap)
    finally:
        claims.release(superevent_id, 'voevent-creation', owner)
    return notice_records.get(superevent_id, kind)


def _finish_copies(superevent_id, kind, later, labels):
    """Upload the copies left to do, then label what was copied."""
    gracedb.concurrently(*later)
    gracedb.concurrently(*(functools.partial(
        gracedb.create_label, label, superevent_id) for label in labels))


def _skip(superevent_id, kind, reason, logs):
    _log_once(superevent_id, f'No {kind} notice: {reason}.', logs)
    notice_records.update(superevent_id, kind, state='skipped',
                          reason=reason)
    note(superevent_id, f'{kind}/skipped', reason)
    log.info('%s: no %s notice: %s', superevent_id, kind, reason)


def _prepare(task, superevent_id, kind):
    """Make the notice's VOEvent and start sending it; or say why not."""
    records = notice_records.all_of(superevent_id)
    record = records.get(kind, {})
    graceid = record.get('preferred_event')
    calls = [functools.partial(gracedb.get_superevent, superevent_id),
             functools.partial(gracedb.get_log, superevent_id)]
    if graceid and notice_rules.carries_event_products(kind):
        calls += [functools.partial(gracedb.get_event, graceid),
                  functools.partial(gracedb.get_log, graceid)]
    superevent, logs, *of_event = gracedb.concurrently(*calls)
    event, event_logs = of_event or (None, [])
    reason = notice_rules.refusal(kind, superevent,
                                  notice_records.sent(records))
    products, later = ({}, []) if reason and kind == notice_rules.RETRACTION \
        else _products(superevent_id, kind, superevent, record, logs,
                       event_logs)
    labels = [PRODUCTS[name] for name in products if name in PRODUCTS]
    if products and notice_rules.carries_event_products(kind):
        note(superevent_id, f'{kind}/products_copied',
             ', '.join(v for v, _ in products.values()))
    if reason is None and kind.startswith('preliminary-') and event:
        reason = notice_rules.unpublishable(event, _rules())
    if reason:
        _finish_copies(superevent_id, kind, later, labels)
        _skip(superevent_id, kind, reason, logs)
        return None
    skymap = next((v for n, (v, _) in products.items()
                   if notice_rules.is_skymap(n)), None)
    options = notice_rules.voevent_options(
        superevent, skymap and skymap.rsplit(',', 1)[0],
        _json(products.get(em_bright.FILENAME, (None, None))[1]),
        _json(products.get(p_astro.FILENAME, (None, None))[1]))
    if notice_rules.voevent_type(kind) == 'RE':
        options = {key: options[key] for key in
                   ('internal', 'open_alert', 'hardware_inj')}
    created = create_voevent_once(task, superevent_id, kind, options, skymap)
    note(superevent_id, f'{kind}/voevent_created', created['ivorn'])
    payload = gracedb.download(
        f'{created["filename"]},{created["file_version"]}', superevent_id)
    (voevent.send.s(payload, once=True)
     | record_sent.s(superevent_id, kind)).delay()
    log.info('%s: sending %s', superevent_id, created['ivorn'])
    _finish_copies(superevent_id, kind, later, labels)
    return created['ivorn']


@_task(bind=True, ignore_result=True)
def send_notice(self, superevent_id, kind):
    """Make a notice and send it, once, or record why not (see the
    module's documentation)."""
    owner = self.request.id
    held = claims.claim(superevent_id, kind, owner,
                        app.conf.orchestrator_notice_lease)
    if held.state != 'mine':
        log.info('%s: %s notice already %s', superevent_id, kind,
                 held.detail if held.state == 'done' else 'in progress')
        return
    state = notice_records.get(superevent_id, kind).get('state')
    if state:  # decided by a task that stopped before finishing the claim
        claims.finish(superevent_id, kind, state)
        return
    try:
        if _prepare(self, superevent_id, kind) is None:
            _after(superevent_id, kind)
            claims.finish(superevent_id, kind, 'skipped')
    except Exception as exc:
        if gracedb.is_transient(exc):
            # The task is retried (NoticeTask), with its id: it keeps the
            # claim.
            raise
        claims.release(superevent_id, kind, owner)
        log.exception('%s: the %s notice could not be sent', superevent_id,
                      kind)
        gracedb.upload.delay(None, None, superevent_id,
                             f'The {kind} notice could not be sent: '
                             f'{type(exc).__name__}: {exc}', list(TAGS))
        raise


def _after(superevent_id, kind):
    """What follows a notice, sent or not."""
    if kind == notice_rules.preliminary(1):
        start_preliminary.apply_async(
            (superevent_id, 2),
            countdown=app.conf.superevent_clean_up_timeout)


@_task(ignore_result=True)
def record_sent(result, superevent_id, kind):
    """Record a notice that :func:`gwcelery.tasks.voevent.send` sent: for a
    preliminary notice, :data:`PRELIMINARY_LABELS` on the superevent; a log
    entry that says who acknowledged it; its stages in the timeline."""
    ivorn = result['ivorn']
    if kind.startswith('preliminary-'):
        for label in PRELIMINARY_LABELS:
            gracedb.create_label(label, superevent_id)
    sent_at = result.get('sent_at')
    note(superevent_id, f'{kind}/sent', ivorn, when=sent_at)
    for peer, latency in (result.get('ack_latency') or {}).items():
        if sent_at is not None and latency is not None:
            note(superevent_id, f'{kind}/acked/{peer}', when=sent_at + latency)
    acked = ', '.join(result.get('acked') or ()) or 'nobody'
    comment = f'Sent {ivorn}; acknowledged by {acked}'
    if result.get('unacked'):
        comment += f'; not by {", ".join(result["unacked"])}'
    _log_once(superevent_id, comment + '.')
    notice_records.update(superevent_id, kind, state='sent')
    log.info('%s: %s', superevent_id, comment)
    _after(superevent_id, kind)
    if kind == notice_rules.INITIAL:
        maybe_update(superevent_id)
    claims.finish(superevent_id, kind, 'sent')
