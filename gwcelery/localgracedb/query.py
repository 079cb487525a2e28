"""The subset of GraceDb's query language that the local GraceDb supports.

A query is a sequence of terms separated by spaces; every term must hold
(there is no ``OR``). Terms:

=============================  ============================================
``gpstime: 1000 .. 2000``      field in a closed range (also ``t_0``,
                               ``t_start``, ``t_end``, ``far``)
``1000 .. 2000``               the default time field in a range
                               (``gpstime`` for events, ``t_0`` for
                               superevents)
``far < 1e-6``                 comparison: ``<``, ``<=``, ``>``, ``>=``,
                               ``=`` on a number field
``group: CBC``                 equality on a text field (``group``,
                               ``pipeline``, ``search``, ``graceid``,
                               ``superevent``, ``category``,
                               ``preferred_event``, ``superevent_id``,
                               ``submitter``); quotes allowed
``label: INJ``                 has the label; ``~INJ`` or ``-INJ``: lacks it
``is_gw: true``                superevents confirmed as GW (or not)
``grbevent.trigger_id = "N"``  External events with that GCN ``TrigID``
                               (also ``trigger_id: N``)
``CBC``, ``gstlal``, ``INJ``   a bare word: a group, pipeline, search or
                               label name for events; a category or label
                               for superevents
=============================  ============================================

:func:`event_conditions` and :func:`superevent_conditions` turn the text
into SQLAlchemy conditions; anything it does
not understand raises :class:`QueryError`, which the server returns as a
400 response with the reason.
"""
import re
import shlex

from sqlalchemy import and_, exists, select, true

from . import ids
from .models import Event, Label, Superevent

__all__ = ('QueryError', 'event_conditions', 'superevent_conditions')

_NUMBER = r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?'
_RANGE = re.compile(rf'^(?:(\w+):)?({_NUMBER})\.\.({_NUMBER})$')
_COMPARE = re.compile(rf'^(\w+):?(<=|>=|<|>|=)({_NUMBER})$')
_FIELD = re.compile(r'^(\w+):(.+)$')
_SPECIAL = re.compile(r'^([\w.]+)(?::|=)(.+)$')


class QueryError(ValueError):
    """The query cannot be understood; the message says where."""


def _terms(text):
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise QueryError(f'bad quoting in query: {e}') from None
    # Glue "a .. b", "far < 1", "group: CBC" into single terms.
    joined = ' '.join(words)
    joined = re.sub(r'\s*\.\.\s*', '..', joined)
    joined = re.sub(r'\s*(<=|>=|<|>|=)\s*', r'\1', joined)
    joined = re.sub(r':\s+', ':', joined)
    joined = re.sub(r':(<=|>=|<|>|=)', r'\1', joined)
    return [t for t in joined.split(' ') if t and t.upper() != 'AND']


def _compare(column, op, value):
    return {'<': column < value, '<=': column <= value, '>': column > value,
            '>=': column >= value, '=': column == value}[op]


def _has_label(object_id_column, name, negate):
    condition = exists().where(and_(Label.object_id == object_id_column,
                                    Label.name == name))
    return ~condition if negate else condition


def _conditions(text, numeric, textual, default_range, bare, label_column,
                extra=None):
    conditions = []
    for term in _terms(text or ''):
        special = _SPECIAL.match(term)
        if extra and special and special.group(1) in extra:
            conditions.append(extra[special.group(1)](special.group(2)))
        elif match := _RANGE.match(term):
            field, low, high = match.groups()
            field = field or default_range
            if field not in numeric:
                raise QueryError(f'cannot range over {field!r}')
            conditions.append(numeric[field].between(float(low),
                                                     float(high)))
        elif match := _COMPARE.match(term):
            field, op, value = match.groups()
            if field not in numeric:
                raise QueryError(f'cannot compare {field!r}')
            conditions.append(_compare(numeric[field], op, float(value)))
        elif match := _FIELD.match(term):
            field, value = match.groups()
            if field in ('label', 'labels'):
                conditions.append(_has_label(label_column, value, False))
            elif field in textual:
                conditions.append(textual[field](value))
            else:
                raise QueryError(f'unknown field {field!r} in {term!r}')
        elif re.match(r'^[~-]?\w+$', term):
            negate = term[0] in '~-'
            word = term.lstrip('~-')
            condition = bare(word) if not negate else None
            if condition is None:
                condition = _has_label(label_column, word, negate)
            conditions.append(condition)
        else:
            raise QueryError(f'cannot understand {term!r}')
    return and_(true(), *conditions)


def event_conditions(text, known):
    """SQL condition for an event query.

    Parameters
    ----------
    text : str
    known : dict
        ``groups``, ``pipelines``, ``searches``: lists of names that bare
        words are matched against (case-insensitively).
    """
    numeric = {'gpstime': Event.gpstime, 'far': Event.far,
               'id': Event.id}
    textual = {
        'group': lambda v: Event.group == _canonical(v, known['groups']),
        'pipeline': lambda v: Event.pipeline == _canonical(
            v, known['pipelines']),
        'search': lambda v: Event.search == _canonical(v, known['searches']),
        'graceid': lambda v: Event.graceid == v,
        'submitter': lambda v: Event.submitter == v,
        'superevent': lambda v: Event.superevent_id.in_(
            select(Superevent.superevent_id).where(
                (Superevent.superevent_id == v) | (Superevent.gw_id == v))),
        'instruments': lambda v: Event.instruments == v,
    }

    def bare(word):
        for kind, column in (('groups', Event.group),
                             ('pipelines', Event.pipeline),
                             ('searches', Event.search)):
            name = _canonical(word, known[kind], strict=True)
            if name is not None:
                return column == name
        return None

    def trigger_id(value):
        return Event.extra_attributes['GRB']['trigger_id'].as_string() \
            == value

    return _conditions(text, numeric, textual, 'gpstime', bare,
                       Event.graceid, {'trigger_id': trigger_id,
                                       'grbevent.trigger_id': trigger_id})


def superevent_conditions(text):
    """SQL condition for a superevent query."""
    numeric = {'t_0': Superevent.t_0, 't_start': Superevent.t_start,
               't_end': Superevent.t_end}
    textual = {
        'category': lambda v: Superevent.category == _category(v),
        'preferred_event': lambda v: Superevent.preferred_event == v,
        'superevent_id': lambda v: (Superevent.superevent_id == v) | (
            Superevent.gw_id == v),
        'id': lambda v: (Superevent.superevent_id == v) | (
            Superevent.gw_id == v),
        'submitter': lambda v: Superevent.submitter == v,
        'is_gw': lambda v: (Superevent.gw_id.is_not(None)
                            if _boolean(v) else Superevent.gw_id.is_(None)),
    }

    def bare(word):
        for code, name in ids.CATEGORIES.items():
            if word.lower() in (code.lower(), name.lower()):
                return Superevent.category == code
        return None

    return _conditions(text, numeric, textual, 't_0', bare,
                       Superevent.superevent_id)


def _canonical(value, names, strict=False):
    for name in names:
        if name.lower() == value.lower():
            return name
    return None if strict else value


def _category(value):
    for code, name in ids.CATEGORIES.items():
        if value.lower() in (code.lower(), name.lower()):
            return code
    raise QueryError(f'unknown category {value!r}')


def _boolean(value):
    if value.lower() in ('true', '1', 'yes'):
        return True
    if value.lower() in ('false', '0', 'no'):
        return False
    raise QueryError(f'not a boolean: {value!r}')

