"""Latency timelines: when each stage of a candidate's way to an alert
happened.

Whichever process does a stage records it with :func:`record`, at once,
in a Redis hash per event or superevent (``gwcelery:timeline:<id>``): the
field is the stage, the value ``{"time": UNIX seconds, "detail": text}``.
The first record of a stage wins (``HSETNX``), so a task that runs again
(a redelivered alert, a retry) keeps the time of the first attempt, and
two processes that record at once lose nothing: each writes only its own
field. Every new stage also increments the hash's revision
(:func:`revision`), which :mod:`gwcelery.tasks.timeline` uses to rewrite
the superevent's ``timeline.json`` in GraceDb until it has every stage.

Stage names: an event's are :data:`EVENT_STAGES`; a superevent's are
:data:`SUPEREVENT_STAGES` and, for each notice, ``<notice>/<stage>`` with
a stage of :data:`NOTICE_STAGES` (``preliminary-1/sent``), the ack of each
subscriber being ``<notice>/acked/<subscriber>``.

:func:`document` assembles ``timeline.json``; :func:`rows` and
:func:`table` read one back for people (the ``gwcelery alerts timeline``
command and the local GraceDb's superevent page).
"""
import datetime
import json
import time

__all__ = ('EVENT_STAGES', 'SUPEREVENT_STAGES', 'NOTICE_STAGES', 'FILENAME',
           'record', 'stages', 'revision', 'revision_key', 'document',
           'assemble', 'rows', 'table', 'record_event_alert',
           'parse_gracedb_time')

#: Name of the timeline's file in GraceDb.
FILENAME = 'timeline.json'

#: Stages of an event, with their descriptions.
EVENT_STAGES = {
    'uploaded': 'event uploaded (GraceDb, to the second)',
    'alert_received': 'event alert received',
    'localization_started': 'BAYESTAR started',
    'localization_finished': 'BAYESTAR finished',
    'skymap_uploaded': 'sky map uploaded to the event',
}

#: Stages of a superevent of its own.
SUPEREVENT_STAGES = {
    'created': 'superevent created (GraceDb, to the second)',
    'alert_received': 'superevent alert received',
}

#: Stages of each notice of a superevent.
NOTICE_STAGES = {
    'requested': 'notice requested',
    'preferred_event': 'preferred event taken',
    'products_ready': 'sky map and classification ready',
    'products_copied': 'copied to the superevent',
    'voevent_created': 'VOEvent created',
    'sent': 'sent',
    'acked': 'acknowledged',
    'echo_checked': 'GCN echo checked',
    'skipped': 'not sent',
}

_KEY = 'gwcelery:timeline:'
_REVISION = ':revision'

#: Seconds a timeline is kept in Redis (then only GraceDb has it).
TTL = 30 * 86400

# Set the stage if it is new; then count a revision. One round trip.
_RECORD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    return 1
end
return 0
"""


def _redis():
    from .claims import redis_client
    return redis_client()


def record(object_id, stage, detail='', when=None):
    """Record that ``stage`` of ``object_id`` happened at ``when`` (UNIX
    seconds; default now), unless it was recorded before.

    Returns
    -------
    bool
        Whether this was the first record of the stage.
    """
    value = json.dumps({'time': time.time() if when is None else float(when),
                        'detail': str(detail or '')})
    return bool(_redis().eval(_RECORD, 2, _KEY + object_id,
                              revision_key(object_id), stage, value, TTL))


def stages(object_id):
    """``{stage: {"time", "detail"}}`` recorded for ``object_id``."""
    raw = _redis().hgetall(_KEY + object_id)
    result = {}
    for field, value in raw.items():
        try:
            result[field.decode()] = json.loads(value)
        except (UnicodeDecodeError, ValueError):
            continue  # not ours: nothing else writes there
    return result


def revision_key(object_id):
    """The Redis key of :func:`revision` (for scripts that compare it)."""
    return _KEY + object_id + _REVISION


def revision(object_id):
    """The number of stages recorded for ``object_id`` so far, as a
    string ('' for none): it changes whenever a stage is added."""
    value = _redis().get(revision_key(object_id))
    return value.decode() if value else ''


def record_event_alert(alert):
    """Record that the ``new`` alert of an event arrived (now) and when
    GraceDb says it was uploaded (the alert's ``object.created``)."""
    graceid = alert['uid']
    record(graceid, 'alert_received')
    uploaded = parse_gracedb_time((alert.get('object') or {}).get('created'))
    if uploaded is not None:
        record(graceid, 'uploaded', when=uploaded)


def parse_gracedb_time(text):
    """UNIX seconds of a GraceDb timestamp (``'2019-04-25 08:18:26
    UTC'``), or ``None`` if it is not one."""
    try:
        when = datetime.datetime.strptime(str(text), '%Y-%m-%d %H:%M:%S UTC')
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def _entry(object_id, stage, value):
    # 'created', 'preliminary-1/sent', 'preliminary-1/acked/127.0.0.1:5555'
    # (notice kinds, file names and subscribers have no slash).
    parts = stage.split('/', 2)
    if len(parts) == 1:
        notice, name, subscriber = None, stage, None
    elif len(parts) == 2:
        (notice, name), subscriber = parts, None
    else:
        notice, name, subscriber = parts
    return {'object': object_id, 'notice': notice, 'stage': name,
            'subscriber': subscriber, 'time': value.get('time'),
            'detail': value.get('detail') or ''}


def document(superevent_id, superevent_stages, event_stages):
    """The content of ``timeline.json``.

    Parameters
    ----------
    superevent_id : str
    superevent_stages : dict
        :func:`stages` of the superevent.
    event_stages : dict
        ``{graceid: stages(graceid)}`` of the events its notices used.

    Returns
    -------
    dict
        ``{"superevent_id", "written", "stages": [...]}``, the stages in
        the order of their times, each ``{"object", "notice", "stage",
        "subscriber", "time", "detail"}`` (``notice`` and ``subscriber``
        are ``None`` where they do not apply).
    """
    entries = [_entry(superevent_id, stage, value)
               for stage, value in superevent_stages.items()]
    for graceid, recorded in sorted(event_stages.items()):
        entries.extend(_entry(graceid, stage, value)
                       for stage, value in recorded.items())
    entries = [e for e in entries if isinstance(e['time'], (int, float))]
    entries.sort(key=lambda e: (e['time'], e['object'], e['stage']))
    return {'superevent_id': superevent_id, 'written': time.time(),
            'stages': entries}


def assemble(superevent_id):
    """:func:`document` of what Redis holds now: the superevent's stages and
    those of the events named in its ``<notice>/preferred_event`` stages."""
    recorded = stages(superevent_id)
    events = {value['detail'] for stage, value in recorded.items()
              if stage.endswith('/preferred_event') and value.get('detail')}
    return document(superevent_id, recorded,
                    {graceid: stages(graceid) for graceid in events})


def _description(entry, superevent_id):
    name = entry['stage']
    if entry['notice']:
        text = f'{entry["notice"]}: {NOTICE_STAGES.get(name, name)}'
        if entry['subscriber']:
            text += f' by {entry["subscriber"]}'
        return text
    names = (SUPEREVENT_STAGES if entry['object'] == superevent_id
             else EVENT_STAGES)
    return f'{entry["object"]}: {names.get(name, name)}'


def rows(doc):
    """The stages of a ``timeline.json`` document, ready to show.

    Returns
    -------
    list of dict
        In time order, each with ``description``, ``utc`` (ISO time to the
        millisecond), ``since_start`` and ``since_previous`` (seconds),
        ``detail``, and the entry's own keys. Malformed entries are left
        out.
    """
    entries = [e for e in (doc or {}).get('stages') or []
               if isinstance(e, dict) and isinstance(e.get('time'),
                                                     (int, float))
               and isinstance(e.get('stage'), str)
               and isinstance(e.get('object'), str)]
    entries.sort(key=lambda e: e['time'])
    sid = (doc or {}).get('superevent_id')
    result = []
    start = previous = entries[0]['time'] if entries else None
    for entry in entries:
        utc = datetime.datetime.fromtimestamp(entry['time'],
                                              datetime.timezone.utc)
        result.append({**entry,
                       'description': _description(entry, sid),
                       'utc': utc.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3],
                       'since_start': entry['time'] - start,
                       'since_previous': entry['time'] - previous,
                       'detail': str(entry.get('detail') or '')})
        previous = entry['time']
    return result


def table(doc):
    """A plain-text table of a ``timeline.json`` document."""
    lines = []
    found = rows(doc)
    width = max([len(r['description']) for r in found] + [5])
    header = (f'{"stage":<{width}}  {"UTC":<23}  {"+s":>9}  {"Δs":>8}  '
              'detail')
    lines.append(header)
    lines.append('-' * len(header))
    for r in found:
        lines.append(f'{r["description"]:<{width}}  {r["utc"]:<23}  '
                     f'{r["since_start"]:9.3f}  {r["since_previous"]:8.3f}  '
                     f'{r["detail"]}'.rstrip())
    return '\n'.join(lines)
