"""Which superevents and external events RAVEN compares, in which windows.

Pure functions on the GraceDb JSON of events and superevents; the
coincidence search itself (:mod:`gwcelery.tasks.raven`) runs the queries
and records the matches. The rules (see :doc:`/external_triggers`):

==================================  ==========  ===========================
external event                      superevent  window setting (GW − ext.)
==================================  ==========  ===========================
GRB: Fermi, Swift, INTEGRAL,        CBC         ``raven_window_grb_cbc``
AGILE; search GRB or SubGRB         Burst       ``raven_window_grb_burst``
SNEWS, search Supernova             Burst       ``raven_window_snews``
==================================  ==========  ===========================

(settings of :mod:`gwcelery.conf`).

* The superevent's kind is its preferred event's (the pipeline, else the
  group: :meth:`gwcelery.superevent_rules.Rules.kind`).
* Categories are kept apart: production superevents meet External
  events, MDC superevents External events of search MDC, test superevents
  Test events made from GCN notices (SNEWS drills).
* An external event labelled ``NOT_GRB`` meets nothing.
"""
import dataclasses

from .superevent_rules import Rules

__all__ = ('GRB_PIPELINES', 'Window', 'Search', 'windows', 'external_kind',
           'gw_kind', 'vetoed', 'searches_from_external',
           'searches_from_superevent')

#: Pipelines of gamma-ray burst missions.
GRB_PIPELINES = frozenset({'Fermi', 'Swift', 'INTEGRAL', 'AGILE'})

#: Searches of gamma-ray burst events that take part.
GRB_SEARCHES = frozenset({'GRB', 'SubGRB', 'MDC'})

#: The label that keeps an external event out of coincidences.
VETO_LABEL = 'NOT_GRB'


@dataclasses.dataclass(frozen=True)
class Window:
    """A coincidence window: ``start <= t_GW − t_external <= end``."""

    external_kind: str
    """``'grb'`` or ``'snews'``."""
    gw_kind: str
    """``'cbc'`` or ``'burst'``."""
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Search:
    """One GraceDb query and what of its results matches."""

    window: Window
    query: str
    """The GraceDb query of superevents (from an external event) or of
    events (from a superevent)."""
    category: str
    """The category (``production``, ``mdc``, ``test``) of both sides."""

    def matches(self, candidate):
        """Whether a superevent or event that the query found matches."""
        if 'superevent_id' in candidate:
            return (_category(candidate) == self.category
                    and gw_kind(candidate) == self.window.gw_kind)
        return (Rules.category(candidate) == self.category
                and external_kind(candidate) == self.window.external_kind
                and not vetoed(candidate))


def windows(conf):
    """The coincidence windows of a configuration (``app.conf``)."""
    return (Window('grb', 'cbc', *map(float, conf['raven_window_grb_cbc'])),
            Window('grb', 'burst',
                   *map(float, conf['raven_window_grb_burst'])),
            Window('snews', 'burst', *map(float, conf['raven_window_snews'])))


def external_kind(event):
    """``'grb'``, ``'snews'``, or ``None`` for events RAVEN ignores."""
    pipeline = event.get('pipeline')
    if pipeline == 'SNEWS':
        return 'snews'
    if pipeline in GRB_PIPELINES and event.get('search') in GRB_SEARCHES:
        return 'grb'
    return None


def gw_kind(superevent):
    """``'cbc'``, ``'burst'`` or ``'other'``: its preferred event's kind."""
    return Rules.kind(superevent.get('preferred_event_data') or {})


def _category(superevent):
    return str(superevent.get('category') or '').lower()


def vetoed(event):
    """Whether an external event is kept out of coincidences."""
    return VETO_LABEL in (event.get('labels') or ())


def _range(low, high):
    return f'{low:.6f} .. {high:.6f}'


def searches_from_external(event, all_windows):
    """The superevent queries to run for a new external event.

    Returns an empty list for an event that takes no part (vetoed, or of
    no kind RAVEN compares).
    """
    kind = external_kind(event)
    if kind is None or vetoed(event):
        return []
    t = float(event['gpstime'])
    return [Search(w, _range(t + w.start, t + w.end), Rules.category(event))
            for w in all_windows if w.external_kind == kind]


def searches_from_superevent(superevent, all_windows):
    """The event queries to run for a new superevent."""
    kind = gw_kind(superevent)
    category = _category(superevent)
    group = 'Test' if category == 'test' else 'External'
    t_0 = float(superevent['t_0'])
    return [Search(w, f'{group} {_range(t_0 - w.end, t_0 - w.start)}',
                   category)
            for w in all_windows if w.gw_kind == kind]
