"""What a GCN notice of an external trigger says, as pure functions.

:func:`read` takes a parsed VOEvent and decides what it becomes; it talks
to nothing. :mod:`gwcelery.tasks.external_triggers` carries the decision
out in GraceDb. The rules (see :doc:`/external_triggers`):

* **Mission** (the GraceDb pipeline) from the IVORN's path
  (``ivo://nasa.gsfc.gcn/Fermi#…`` → ``Fermi``), which must be the mission
  of the notice type (:data:`MISSION_TYPES`).
* **Role.** ``observation`` (the VOEvent default) → group ``External``.
  ``test`` → group ``Test`` for SNEWS, whose test notices are drills that
  we want to see end to end; dropped for every other mission, whose test
  notices must never look like real triggers. ``utility`` and
  ``prediction`` → dropped.
* **Search.** ``Supernova`` for SNEWS, ``SubGRB`` for Fermi GBM
  sub-threshold notices (type 131), ``GRB`` for the rest.
* **Trigger id.** The ``TrigID`` parameter, or ``Trans_Num`` where there is
  none; later notices of one trigger share it.
* **Reliability.** A notice whose ``Reliability`` is at most
  :data:`MAX_DROPPED_RELIABILITY` is dropped.
* **Not a GRB.** The notice is flagged (:attr:`Notice.not_grb`, which
  becomes the ``NOT_GRB`` label) when ``Def_NOT_a_GRB`` is true; for Fermi,
  when ``Most_Likely_Index`` is not :data:`FERMI_GRB_CLASS` or
  ``Most_Likely_Prob`` is under :data:`FERMI_GRB_MIN_PROBABILITY` percent;
  for Swift, when ``StarTrack_Lost_Lock`` is true.
* **Well-formedness.** A notice without a trigger id, with a trigger id
  that is not a plain token, without a readable ``ISOTime``, with a
  non-numeric position or flag, or from an unknown mission raises
  :class:`NoticeError`.
"""
import dataclasses
import datetime
import re
from urllib.parse import urlsplit

from gcn import NoticeType

from .util import isotime
from .util.numbers import finite

__all__ = ('MISSION_TYPES', 'NOTICE_TYPES', 'Notice', 'Skip', 'NoticeError',
           'read')

#: Notice types handled, by mission (the GraceDb pipeline name).
MISSION_TYPES = {
    'Fermi': (NoticeType.FERMI_GBM_ALERT, NoticeType.FERMI_GBM_FLT_POS,
              NoticeType.FERMI_GBM_GND_POS, NoticeType.FERMI_GBM_FIN_POS,
              NoticeType.FERMI_GBM_SUBTHRESH),
    'Swift': (NoticeType.SWIFT_BAT_GRB_POS_ACK,),
    'INTEGRAL': (NoticeType.INTEGRAL_WAKEUP, NoticeType.INTEGRAL_REFINED,
                 NoticeType.INTEGRAL_OFFLINE),
    'AGILE': (NoticeType.AGILE_MCAL_ALERT,),
    'SNEWS': (NoticeType.SNEWS,),
}

#: Every notice type handled.
NOTICE_TYPES = tuple(t for types in MISSION_TYPES.values() for t in types)

_MISSION_OF_TYPE = {t: mission for mission, types in MISSION_TYPES.items()
                    for t in types}

#: Fermi GBM's ``Most_Likely_Index`` of an astrophysical GRB (other values
#: are particle events, solar flares, local or distant particles, …).
FERMI_GRB_CLASS = 4

#: Least ``Most_Likely_Prob`` (percent) of a Fermi trigger taken as a GRB.
FERMI_GRB_MIN_PROBABILITY = 50.0

#: Sub-threshold notices with a ``Reliability`` of at most this are dropped.
MAX_DROPPED_RELIABILITY = 4

# Trigger ids go into GraceDb queries between quotes: plain tokens only.
_TRIGGER_ID = re.compile(r'^[0-9A-Za-z_.:-]{1,64}$')


class NoticeError(ValueError):
    """The notice lacks what it needs or has unreadable fields."""


@dataclasses.dataclass(frozen=True)
class Skip:
    """A well-formed notice that is deliberately not recorded."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Notice:
    """A notice to record as an event in GraceDb."""

    ivorn: str
    notice_type: int
    pipeline: str
    """The mission (``Fermi``, ``Swift``, ``INTEGRAL``, ``AGILE`` or
    ``SNEWS``)."""
    group: str
    """``External``, or ``Test`` for SNEWS test notices."""
    search: str
    """``GRB``, ``SubGRB`` or ``Supernova``."""
    trigger_id: str
    time: datetime.datetime
    """Trigger time (UTC, aware)."""
    not_grb: str | None = None
    """Why the notice says that the trigger is not a GRB, or ``None``."""


def _local(tag):
    return tag.rsplit('}', 1)[-1] if isinstance(tag, str) else ''


def _params(root):
    """``{name: value}`` of every ``What`` parameter, groups included (the
    first of a name wins)."""
    params = {}
    for what in root.iterchildren('{*}What'):
        for param in what.iter('{*}Param'):
            name = param.get('name')
            if name:
                params.setdefault(name, (param.get('value') or '').strip())
    return params


def _boolean(params, name):
    value = params.get(name)
    if value is None:
        return False
    if value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise NoticeError(f'{name} is neither true nor false: {value!r}')


def _number(value, name):
    try:
        return finite(value, name)
    except ValueError as e:
        raise NoticeError(str(e)) from None


def _mission(ivorn):
    path = urlsplit(ivorn).path.strip('/')
    for mission in MISSION_TYPES:
        if path.lower() == mission.lower():
            return mission
    raise NoticeError(f'the IVORN names no known mission ({path!r})')


def _time(root):
    element = next(root.iterfind('./{*}WhereWhen//{*}ISOTime'), None)
    text = (element.text or '').strip() if element is not None else ''
    if not text:
        raise NoticeError('no ISOTime in WhereWhen')
    try:
        return isotime.utc(text)
    except ValueError:
        raise NoticeError(f'ISOTime is not a time: {text!r}') from None


def _check_position(root):
    for name in ('C1', 'C2', 'Error2Radius'):
        for element in root.iterfind(f'./{{*}}WhereWhen//{{*}}{name}'):
            _number((element.text or '').strip(), name)


def _not_grb(mission, params):
    if _boolean(params, 'Def_NOT_a_GRB'):
        return 'Def_NOT_a_GRB is true'
    if mission == 'Fermi' and 'Most_Likely_Index' in params:
        index = _number(params['Most_Likely_Index'], 'Most_Likely_Index')
        probability = _number(params.get('Most_Likely_Prob'),
                              'Most_Likely_Prob')
        if index != FERMI_GRB_CLASS:
            return (f'most likely class {index:g}, not a GRB '
                    f'({FERMI_GRB_CLASS})')
        if probability < FERMI_GRB_MIN_PROBABILITY:
            return (f'GRB with a probability of only {probability:g} % '
                    f'(< {FERMI_GRB_MIN_PROBABILITY:g} %)')
    if mission == 'Swift' and _boolean(params, 'StarTrack_Lost_Lock'):
        return 'the star tracker lost lock'
    return None


def read(root, notice_type):
    """What a notice becomes.

    Parameters
    ----------
    root : lxml.etree._Element
        The notice, parsed.
    notice_type : int
        Its GCN notice type (``Packet_Type``).

    Returns
    -------
    Notice or Skip

    Raises
    ------
    NoticeError
        The notice is malformed; the message says how.
    """
    ivorn = root.get('ivorn') or ''
    if not ivorn:
        raise NoticeError('the VOEvent has no IVORN')
    expected = _MISSION_OF_TYPE.get(notice_type)
    if expected is None:
        raise NoticeError(f'notice type {notice_type} is not an external '
                          'trigger type')
    mission = _mission(ivorn)
    if mission != expected:
        raise NoticeError(f'notice type {notice_type} is from {expected}, '
                          f'but the IVORN names {mission}')
    role = root.get('role') or 'observation'
    if role == 'test' and mission == 'SNEWS':
        group = 'Test'
    elif role == 'observation':
        group = 'External'
    else:
        return Skip(f'{mission} notice with role {role!r}')
    params = _params(root)
    trigger_id = params.get('TrigID') or params.get('Trans_Num')
    if not trigger_id:
        raise NoticeError('no TrigID or Trans_Num parameter')
    if not _TRIGGER_ID.match(trigger_id):
        raise NoticeError(f'trigger id is not a plain token: '
                          f'{trigger_id[:80]!r}')
    when = _time(root)
    _check_position(root)
    if 'Reliability' in params:
        reliability = _number(params['Reliability'], 'Reliability')
        if reliability <= MAX_DROPPED_RELIABILITY:
            return Skip(f'reliability {reliability:g} is at most '
                        f'{MAX_DROPPED_RELIABILITY}')
    if mission == 'SNEWS':
        search = 'Supernova'
    elif notice_type == NoticeType.FERMI_GBM_SUBTHRESH:
        search = 'SubGRB'
    else:
        search = 'GRB'
    return Notice(
        ivorn=ivorn, notice_type=int(notice_type), pipeline=mission,
        group=group, search=search, trigger_id=trigger_id, time=when,
        not_grb=None if mission == 'SNEWS' else _not_grb(mission, params))
