"""Alerts applied together: the superevent manager's plan for one batch.

The manager takes every alert waiting for it at once. :class:`Batch`
replays those alerts' events, in order, on a picture of the superevents
around them, taking at each step the decision that handling that alert on
its own would take (the same :class:`~gwcelery.superevent_rules.Rules`,
the same neighbours, the same comparisons), and keeps the net result:
:meth:`Batch.writes` is the shortest list of GraceDb requests that brings
GraceDb from the picture it started from to the state one-by-one handling
would have left it in.

* A superevent created in the batch is created once, with its final
  segment, ``t_0``, preferred event and all its events, in one request.
* An existing superevent gets one request per event added, then at most
  one update with the fields that differ at the end.

Like :mod:`~gwcelery.superevent_rules`, this module talks to nothing: the
caller passes a *reader* with three methods for what the replay may need
to look up in GraceDb:

``event(graceid)``
    An event's JSON, or ``None`` if GraceDb does not know it.
``members(superevent_id)``
    The JSON of the events GraceDb lists in a superevent.
``superevent(superevent_id)``
    A superevent's JSON.

The only difference from handling alerts one at a time is the name of a
superevent that the batch creates: its date is that of its final ``t_0``
rather than that of the event that created it, which differs only for a
candidate that straddles midnight UTC.
"""
import copy
import dataclasses
import math

from .superevent_rules import (TIME_TOLERANCE, Create, Ignore, Join,
                               finite_float)

__all__ = ('Batch', 'Outcome', 'NewSuperevent', 'AddEvent',
           'UpdateSuperevent', 'REQUIRED', 'NEW_PREFIX')

#: Event fields that the rules read.
REQUIRED = frozenset({'graceid', 'group', 'pipeline', 'gpstime', 'far',
                      'labels', 'instruments', 'extra_attributes'})

#: Prefix of the provisional ids of superevents created in a batch.
NEW_PREFIX = 'new:'

_FIELDS = ('t_start', 't_0', 't_end', 'preferred_event')


@dataclasses.dataclass
class Outcome:
    """What one event's alert came to."""

    graceid: str
    action: str
    """``'ignore'``, ``'create'``, ``'join'`` or ``'update'``."""
    superevent_id: str | None
    """Its superevent (a provisional id for one created in the batch)."""
    reason: str | None = None
    """Why it was ignored."""


@dataclasses.dataclass(frozen=True)
class NewSuperevent:
    """Create a superevent with all its events."""

    provisional_id: str
    category: str
    t_start: float
    t_0: float
    t_end: float
    preferred_event: str
    events: tuple
    """Its other events, in the order they joined."""


@dataclasses.dataclass(frozen=True)
class AddEvent:
    """Add an event to an existing superevent."""

    superevent_id: str
    graceid: str


@dataclasses.dataclass(frozen=True)
class UpdateSuperevent:
    """Change fields of an existing superevent."""

    superevent_id: str
    changes: dict


def _query_bounds(start, end):
    # The neighbour query sends its bounds with six decimals; use the same.
    return float(f'{start:.6f}'), float(f'{end:.6f}')


class Batch:
    """The replay of one batch of events.

    Parameters
    ----------
    rules : gwcelery.superevent_rules.Rules
    superevents : iterable of dict
        GraceDb's superevents around the batch's events: at least every one
        whose ``t_0`` lies in the neighbour window of one of them.
    reader : object
        Looks things up in GraceDb (see the module's description).
    """

    def __init__(self, rules, superevents, reader):
        self.rules = rules
        self.reader = reader
        self.original = {s['superevent_id']: copy.deepcopy(s)
                         for s in superevents}
        self.view = copy.deepcopy(self.original)
        self.created = []
        self.added = {}
        self.copies = {}
        self._members = {}

    # -- the replay --------------------------------------------------------

    def add(self, event):
        """Replay the alert of one event (its JSON as the alert carried
        it); return its :class:`Outcome`.

        Exceptions of the reader propagate; what the replay had done for
        this event by then stays done, as it would in GraceDb.
        """
        graceid = event.get('graceid')
        self.copies[graceid] = event
        try:
            start, end = self.rules.query_window(event)
        except (KeyError, TypeError, ValueError):
            neighbours = []  # no event time: plan() says why it is ignored
        else:
            low, high = _query_bounds(start, end)
            neighbours = [s for s in self.view.values()
                          if finite_float(s.get('t_0')) is not None
                          and low <= float(s['t_0']) <= high]
        action = self.rules.plan(event, neighbours)
        if isinstance(action, Ignore):
            return Outcome(graceid, 'ignore', None, action.reason)
        if isinstance(action, Create):
            return self._create(event, action)
        if isinstance(action, Join):
            superevent = self.view[action.superevent_id]
            superevent.setdefault('gw_events', []).append(graceid)
            if action.superevent_id in self.original:
                self.added.setdefault(action.superevent_id, []).append(
                    graceid)
            self._join_update(superevent, event)
            return Outcome(graceid, 'join', action.superevent_id)
        self._reevaluate(action.superevent_id)
        return Outcome(graceid, 'update', action.superevent_id)

    def _create(self, event, action):
        provisional = f'{NEW_PREFIX}{len(self.created) + 1}'
        self.created.append(provisional)
        self.view[provisional] = {
            'superevent_id': provisional, 'category': action.category,
            't_start': action.t_start, 't_0': action.t_0,
            't_end': action.t_end, 'preferred_event': action.preferred_event,
            'preferred_event_data': event, 'gw_events': [event['graceid']]}
        return Outcome(event['graceid'], 'create', provisional)

    def _apply(self, superevent, changes, events):
        superevent.update(changes)
        if 'preferred_event' in changes:
            superevent['preferred_event_data'] = next(
                e for e in events
                if e.get('graceid') == changes['preferred_event'])

    def _join_update(self, superevent, event):
        # As one-by-one handling: weigh the new event against the current
        # preferred event only (each member's change re-evaluates in full).
        preferred_id = superevent.get('preferred_event')
        preferred = superevent.get('preferred_event_data') or {}
        if preferred.get('graceid') != preferred_id or not REQUIRED <= set(
                preferred):
            preferred = self.reader.event(preferred_id)
            if preferred is None:
                # The preferred event is gone from GraceDb: weigh them all.
                self._reevaluate(superevent['superevent_id'])
                return
        events = [preferred, event]
        self._apply(superevent, self.rules.changes(superevent, events),
                    events)

    def _member_copies(self, superevent_id):
        """Events of a superevent: this batch's copies of those it has
        seen, GraceDb's of the others."""
        superevent = self.view[superevent_id]
        if superevent_id in self.original and superevent_id not in \
                self._members:
            self._members[superevent_id] = {
                e['graceid']: e for e in self.reader.members(superevent_id)}
        known = self._members.get(superevent_id, {})
        events = []
        for graceid in superevent.get('gw_events') or []:
            event = self.copies.get(graceid) or known.get(graceid)
            if event is None:
                # Should the search miss a member, fetch it alone.
                event = self.reader.event(graceid)
                if event is None:
                    raise LookupError(f'event {graceid} of {superevent_id} '
                                      'is not in GraceDb')
                known[graceid] = event
            events.append(event)
        return events

    def _reevaluate(self, superevent_id):
        if superevent_id not in self.view:
            superevent = self.reader.superevent(superevent_id)
            self.original[superevent_id] = copy.deepcopy(superevent)
            self.view[superevent_id] = superevent
        events = self._member_copies(superevent_id)
        if events:
            self._apply(self.view[superevent_id],
                        self.rules.changes(self.view[superevent_id], events),
                        events)

    # -- the net result ------------------------------------------------------

    def writes(self):
        """The GraceDb requests that carry out the batch, in order:
        :class:`NewSuperevent`, :class:`AddEvent` and
        :class:`UpdateSuperevent` objects."""
        result = []
        for provisional in self.created:
            s = self.view[provisional]
            result.append(NewSuperevent(
                provisional, s['category'], s['t_start'], s['t_0'],
                s['t_end'], s['preferred_event'],
                tuple(g for g in s['gw_events']
                      if g != s['preferred_event'])))
        for superevent_id, before in self.original.items():
            for graceid in self.added.get(superevent_id, ()):
                result.append(AddEvent(superevent_id, graceid))
            changes = _differences(before, self.view[superevent_id])
            if changes:
                result.append(UpdateSuperevent(superevent_id, changes))
        return result


def _differences(before, after):
    changes = {}
    for key in _FIELDS:
        old, new = before.get(key), after.get(key)
        if key == 'preferred_event':
            if old != new:
                changes[key] = new
        elif finite_float(new) is not None and (
                finite_float(old) is None or not math.isclose(
                    float(old), float(new), rel_tol=0,
                    abs_tol=TIME_TOLERANCE)):
            changes[key] = float(new)
    return changes
