"""What the orchestrator knows of each notice of a superevent, in Redis.

One hash per notice, ``gwcelery:notice:<superevent>:<kind>`` (kinds:
:mod:`gwcelery.notice_rules`), with string fields:

``preferred_event``, ``pinned_at``, ``deadline``
    The event whose products the notice carries, when it was taken and
    until when the notice waits for its products (set once: :func:`pin`).
``voevent_type``, ``ordinal``
    The plan: the notice is the ``ordinal``-th VOEvent of that type of the
    superevent (written before GraceDb is asked to create it, so that a
    task killed in between finds its VOEvent; see
    :func:`gwcelery.tasks.notices.create_voevent_once`).
``N``, ``ivorn``, ``filename``, ``file_version``
    The VOEvent once created.
``state``
    ``sent`` or ``skipped`` once decided, with ``reason`` for the latter.

A set per superevent (``gwcelery:notices:<superevent>``) lists its kinds,
and a set per event (``gwcelery:notices-waiting:<graceid>``) the notices
that wait for that event's products, so that a label on the event wakes
them without a GraceDb query. Everything expires after :data:`TTL`.
"""
import json

from .claims import redis_client

__all__ = ('TTL', 'pin', 'get', 'update', 'all_of', 'sent', 'find_ivorn',
           'ordinal_taken', 'wait', 'waiting', 'stop_waiting')

#: Seconds the records are kept.
TTL = 30 * 86400

_NOTICE = 'gwcelery:notice:'
_KINDS = 'gwcelery:notices:'
_WAITING = 'gwcelery:notices-waiting:'

# Pin a notice (ARGV: time to live, kind, field, value, field, value…)
# unless it is pinned already; list its kind.
_PIN = """
local new = 0
if redis.call('HEXISTS', KEYS[1], 'pinned_at') == 0 then
    for i = 3, #ARGV, 2 do
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    new = 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return new
"""


def _key(superevent_id, kind):
    return f'{_NOTICE}{superevent_id}:{kind}'


def _strings(fields):
    return {k: v if isinstance(v, str) else repr(v) if isinstance(v, float)
            else str(v) for k, v in fields.items() if v is not None}


def pin(superevent_id, kind, **fields):
    """Record the notice's event and deadline unless an earlier call did.

    Returns
    -------
    tuple
        ``(record, new)``: the notice's record (:func:`get`) and whether
        this call pinned it.
    """
    values = _strings(fields)
    values.setdefault('pinned_at', '')
    flat = [item for pair in values.items() for item in pair]
    new = redis_client().eval(_PIN, 2, _key(superevent_id, kind),
                              _KINDS + superevent_id, TTL, kind, *flat)
    return get(superevent_id, kind), bool(new)


def get(superevent_id, kind):
    """The notice's record: a dict of strings (empty if unknown)."""
    raw = redis_client().hgetall(_key(superevent_id, kind))
    return {k.decode(): v.decode() for k, v in raw.items()}


def update(superevent_id, kind, **fields):
    """Set fields of the notice's record (``None`` values are skipped)."""
    client = redis_client()
    key = _key(superevent_id, kind)
    with client.pipeline() as pipe:
        pipe.hset(key, mapping=_strings(fields))
        pipe.expire(key, TTL)
        pipe.sadd(_KINDS + superevent_id, kind)
        pipe.expire(_KINDS + superevent_id, TTL)
        pipe.execute()


def all_of(superevent_id):
    """``{kind: record}`` of every notice of the superevent."""
    kinds = sorted(k.decode() for k in
                   redis_client().smembers(_KINDS + superevent_id))
    return {kind: get(superevent_id, kind) for kind in kinds}


def sent(records):
    """Kinds sent, among :func:`all_of`'s records."""
    return {kind for kind, record in records.items()
            if record.get('state') == 'sent'}


def find_ivorn(records, ivorn):
    """The kind whose VOEvent has this IVORN, among :func:`all_of`'s
    records, or ``None``."""
    return next((kind for kind, record in records.items()
                 if record.get('ivorn') == ivorn), None)


def ordinal_taken(records, voevent_type, ordinal, other_than):
    """Whether a notice other than ``other_than`` has the ``ordinal``-th
    VOEvent of ``voevent_type`` as its own (created, not only planned)."""
    return any(record.get('voevent_type') == voevent_type
               and record.get('ordinal') == str(ordinal)
               and record.get('N') and kind != other_than
               for kind, record in records.items())


def wait(graceid, superevent_id, kind):
    """Note that a notice waits for the products of event ``graceid``."""
    client = redis_client()
    client.sadd(_WAITING + graceid, json.dumps([superevent_id, kind]))
    client.expire(_WAITING + graceid, TTL)


def waiting(graceid):
    """``[(superevent_id, kind)]`` waiting for event ``graceid``."""
    return sorted(tuple(json.loads(item)) for item in
                  redis_client().smembers(_WAITING + graceid))


def stop_waiting(graceid, superevent_id, kind):
    """The notice waits no more for event ``graceid``."""
    redis_client().srem(_WAITING + graceid,
                        json.dumps([superevent_id, kind]))
