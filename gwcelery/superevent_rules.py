"""The rules that group G events into superevents, as pure functions.

This module decides; it talks to nothing. :mod:`gwcelery.tasks.superevents`
fetches events and superevents from GraceDb, asks a :class:`Rules` object
what to do and carries it out. Everything here works on the JSON
dictionaries of the GraceDb REST API (``graceid``, ``group``, ``pipeline``,
``search``, ``gpstime``, ``far``, ``instruments``, ``offline``, ``labels``,
``extra_attributes``; ``superevent_id``, ``category``, ``t_start``,
``t_0``, ``t_end``, ``preferred_event``, ``gw_events``).

Supported rules (each threshold and window is a setting in
:mod:`gwcelery.conf`, read by :meth:`Rules.from_conf`):

* **Eligibility.** An event takes part when its FAR is known and at most
  :data:`~gwcelery.conf.superevent_far_threshold`, it is not an offline
  event and it is not an external (group ``External``) event.
* **Categories.** Group ``Test`` → ``test``; search ``MDC`` → ``mdc``;
  anything else → ``production``. Events of different categories never
  share a superevent.
* **Kinds.** The pipeline decides whether an event is a compact binary
  (``cbc``) or burst (``burst``) candidate, falling back on its group.
* **Event segments** ``[t − d_t_start, t + d_t_end]`` around the event time
  ``t``: CBC pipelines use per-pipeline windows (±1 s by default); cWB uses
  its ``MultiBurst.duration`` times a factor; oLIB uses
  ``LalInferenceBurst.quality_mean / frequency_mean``; anything else, or a
  burst event missing those attributes, the default window.
* **Neighbours.** Superevents of the event's category are looked up within
  ``[t − query_d_t_start, t + query_d_t_end]``; of those whose segment
  intersects the event's segment, the one whose ``t_0`` is nearest joins
  the event. None → a new superevent with the event as preferred event.
* **Segment of a superevent** is the union of its previous segment and the
  segments of all its events: it widens, never shrinks.
* **Preferred event** is the first event by :meth:`Rules.sort_key`, whose
  criteria and their order are a setting; by default complete before
  incomplete; publishable before not; CBC before Burst; among CBC more
  instruments, then higher network SNR; among Burst lower FAR; always last
  the lower GraceDb id (the earlier upload), so that the outcome does not
  depend on the order in which alerts arrive.
  ``t_0`` is the preferred event's time.

Applying the rules twice to the same state yields no change
(:meth:`Rules.changes` returns an empty dictionary), which is what makes
redelivered alerts harmless.
"""
import dataclasses
import math
import re
from types import MappingProxyType

__all__ = ('Rules', 'Create', 'Join', 'Ignore', 'Update',
           'PREFERRED_CRITERIA', 'PREFERRED_ORDER', 'TIME_TOLERANCE',
           'finite_float')

#: Pipelines (lower case) whose candidates are compact binary coalescences.
CBC_PIPELINES = frozenset(
    {'gstlal', 'pycbc', 'spiir', 'mbtaonline', 'mbta'})

#: Pipelines (lower case) whose candidates are unmodelled bursts.
BURST_PIPELINES = frozenset({'cwb', 'olib', 'lib'})

#: The criteria that can pick the preferred event, each preferring events
#: with the higher value: ``complete`` (has every completeness label of its
#: kind), ``publishable`` (FAR × trials factor within the public-alert
#: threshold), ``group`` (CBC over Burst over anything else),
#: ``instruments`` (number of detectors, CBC only), ``significance``
#: (network SNR for CBC, lower FAR for the rest).
PREFERRED_CRITERIA = frozenset(
    {'complete', 'publishable', 'group', 'instruments', 'significance'})

#: The default order of :data:`PREFERRED_CRITERIA`.
PREFERRED_ORDER = ('complete', 'publishable', 'group', 'instruments',
                   'significance')

#: Tolerance (s) below which two segment bounds count as equal, so that
#: rounding in GraceDb's storage does not cause needless updates.
TIME_TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class Ignore:
    """The event takes no part; ``reason`` says why."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Create:
    """Create a superevent holding only this event."""

    category: str
    t_start: float
    t_0: float
    t_end: float
    preferred_event: str


@dataclasses.dataclass(frozen=True)
class Join:
    """Add the event to an existing superevent (then :class:`Update` it)."""

    superevent_id: str


@dataclasses.dataclass(frozen=True)
class Update:
    """The event is already in a superevent: only re-evaluate that one."""

    superevent_id: str


def _lower(value):
    return str(value or '').strip().lower()


def finite_float(value):
    """``value`` as a finite :class:`float`, or ``None``."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _graceid_number(graceid):
    match = re.search(r'(\d+)$', str(graceid or ''))
    return int(match.group(1)) if match else math.inf


@dataclasses.dataclass(frozen=True)
class Rules:
    """The clustering rules with their thresholds.

    Build one from the application's configuration with
    :meth:`from_conf`; tests may build one with other values.
    """

    far_threshold: float = 1 / 3600
    """Events with a higher FAR (Hz) are ignored."""

    d_t_start: dict = dataclasses.field(
        default_factory=lambda: {p: 1.0 for p in CBC_PIPELINES})
    """Seconds before the event time that its segment starts, by pipeline."""

    d_t_end: dict = dataclasses.field(
        default_factory=lambda: {p: 1.0 for p in CBC_PIPELINES})
    """Seconds after the event time that its segment ends, by pipeline."""

    default_d_t_start: float = 1.0
    """Segment start offset for pipelines without their own rule."""

    default_d_t_end: float = 1.0
    """Segment end offset for pipelines without their own rule."""

    cwb_duration_factor: float = 4.0
    """cWB segments extend this many durations either side."""

    query_d_t_start: float = 100.0
    """Neighbouring superevents are searched this long before the event."""

    query_d_t_end: float = 100.0
    """Neighbouring superevents are searched this long after the event."""

    complete_labels: dict = dataclasses.field(default_factory=lambda: {
        'cbc': ('PASTRO_READY', 'EMBRIGHT_READY', 'SKYMAP_READY'),
        'burst': ('SKYMAP_READY',)})
    """Labels an event of each kind needs to count as complete."""

    publish_far_threshold: dict = dataclasses.field(
        default_factory=lambda: {'cbc': 1 / (60 * 86400),
                                 'burst': 1 / (365 * 86400)})
    """FAR × trials factor at or below which an event is publishable."""

    trials_factor: dict = dataclasses.field(
        default_factory=lambda: {'cbc': 5.0, 'burst': 4.0})
    """Trials factor of each kind (the number of searches of that kind)."""

    preferred_order: tuple = PREFERRED_ORDER
    """Criteria that pick the preferred event, most important first; any
    ordered selection of :data:`PREFERRED_CRITERIA`."""

    def __post_init__(self):
        order = tuple(self.preferred_order)
        unknown = [name for name in order if name not in PREFERRED_CRITERIA]
        if unknown or len(set(order)) != len(order):
            raise ValueError(
                f'preferred-event criteria {list(order)!r} must be distinct '
                f'names from {sorted(PREFERRED_CRITERIA)}')
        object.__setattr__(self, 'preferred_order', order)
        # Keys are matched in lower case; freeze the tables.
        for name in ('d_t_start', 'd_t_end', 'complete_labels',
                     'publish_far_threshold', 'trials_factor'):
            table = {_lower(k): v for k, v in dict(getattr(self, name)).items()}
            object.__setattr__(self, name, MappingProxyType(table))

    @classmethod
    def from_conf(cls, conf):
        """Rules from a configuration mapping (``app.conf``).

        Parameters
        ----------
        conf : Mapping
            Must hold the ``superevent_*``, ``preliminary_alert_*``
            settings of :mod:`gwcelery.conf`.
        """
        return cls(
            far_threshold=conf['superevent_far_threshold'],
            d_t_start=conf['superevent_d_t_start'],
            d_t_end=conf['superevent_d_t_end'],
            default_d_t_start=conf['superevent_default_d_t_start'],
            default_d_t_end=conf['superevent_default_d_t_end'],
            cwb_duration_factor=conf['superevent_cwb_duration_factor'],
            query_d_t_start=conf['superevent_query_d_t_start'],
            query_d_t_end=conf['superevent_query_d_t_end'],
            complete_labels=conf['superevent_complete_labels'],
            publish_far_threshold=conf['preliminary_alert_far_threshold'],
            trials_factor=conf['preliminary_alert_trials_factor'],
            preferred_order=conf['superevent_preferred_event_order'])

    # -- properties of one event ---------------------------------------------

    @staticmethod
    def category(event):
        """Superevent category of an event: production, test or mdc."""
        if _lower(event.get('group')) == 'test':
            return 'test'
        if _lower(event.get('search')) == 'mdc':
            return 'mdc'
        return 'production'

    @staticmethod
    def kind(event):
        """``'cbc'``, ``'burst'`` or ``'other'``, from pipeline then group."""
        pipeline = _lower(event.get('pipeline'))
        if pipeline in CBC_PIPELINES:
            return 'cbc'
        if pipeline in BURST_PIPELINES:
            return 'burst'
        group = _lower(event.get('group'))
        return group if group in ('cbc', 'burst') else 'other'

    def ineligibility(self, event):
        """Why an event takes no part in superevents, or ``None``."""
        if _lower(event.get('group')) == 'external':
            return 'external events are handled by RAVEN, not here'
        if event.get('offline'):
            return 'offline event'
        if finite_float(event.get('gpstime')) is None:
            return 'no event time'
        far = finite_float(event.get('far'))
        if far is None:
            return 'no FAR'
        if far > self.far_threshold:
            return f'FAR {far:g} Hz above threshold {self.far_threshold:g} Hz'
        return None

    def segment(self, event):
        """``(t_start, t_end)`` of an event's segment, in GPS seconds."""
        t = float(event['gpstime'])
        pipeline = _lower(event.get('pipeline'))
        extra = event.get('extra_attributes') or {}
        half = None
        if pipeline == 'cwb':
            duration = finite_float((extra.get('MultiBurst') or {}).get('duration'))
            if duration is not None and duration >= 0:
                half = self.cwb_duration_factor * duration
        elif pipeline in ('olib', 'lib'):
            lib = extra.get('LalInferenceBurst') or {}
            quality = finite_float(lib.get('quality_mean'))
            frequency = finite_float(lib.get('frequency_mean'))
            if quality is not None and frequency and frequency > 0:
                half = abs(quality) / frequency
        if half is not None:
            return t - half, t + half
        return (t - self.d_t_start.get(pipeline, self.default_d_t_start),
                t + self.d_t_end.get(pipeline, self.default_d_t_end))

    def query_window(self, event):
        """``(start, end)`` within which to look for neighbouring superevents."""
        t = float(event['gpstime'])
        return t - self.query_d_t_start, t + self.query_d_t_end

    @staticmethod
    def instruments(event):
        """Set of detectors that took part (from ``instruments``)."""
        text = event.get('instruments') or ''
        if not text:
            coinc = (event.get('extra_attributes') or {}).get('CoincInspiral')
            text = (coinc or {}).get('ifos') or ''
        return {ifo.strip() for ifo in str(text).split(',') if ifo.strip()}

    @staticmethod
    def snr(event):
        """Network SNR of a CBC event, or 0 when unknown."""
        extra = event.get('extra_attributes') or {}
        snr = finite_float((extra.get('CoincInspiral') or {}).get('snr'))
        if snr is not None:
            return snr
        singles = extra.get('SingleInspiral') or []
        squares = [finite_float(s.get('snr')) for s in singles if isinstance(s, dict)]
        squares = [s * s for s in squares if s is not None]
        return math.sqrt(sum(squares)) if squares else 0.0

    def is_complete(self, event):
        """Whether the event has every label its kind needs."""
        needed = self.complete_labels.get(self.kind(event))
        if not needed:
            return False
        return set(needed) <= set(event.get('labels') or ())

    def is_publishable(self, event):
        """Whether FAR × trials factor is within the public-alert threshold."""
        kind = self.kind(event)
        far = finite_float(event.get('far'))
        threshold = self.publish_far_threshold.get(kind)
        if far is None or threshold is None:
            return False
        return far * self.trials_factor.get(kind, 1.0) <= threshold

    def _criterion(self, name, event):
        kind = self.kind(event)
        if name == 'complete':
            return self.is_complete(event)
        if name == 'publishable':
            return self.is_publishable(event)
        if name == 'group':
            return {'cbc': 2, 'burst': 1}.get(kind, 0)
        if name == 'instruments':
            return len(self.instruments(event)) if kind == 'cbc' else 0
        # 'significance': loudness for CBC, rarity for everything else.
        if kind == 'cbc':
            return self.snr(event)
        far = finite_float(event.get('far'))
        return -far if far is not None else -math.inf

    def sort_key(self, event):
        """Key whose maximum is the preferred event: the criteria of
        :attr:`preferred_order` in turn, then the lower GraceDb number."""
        return (*(self._criterion(name, event)
                  for name in self.preferred_order),
                -_graceid_number(event.get('graceid')))

    def preferred(self, events):
        """The preferred event among ``events`` (an iterable of dicts)."""
        return max(events, key=self.sort_key)

    # -- decisions -------------------------------------------------------------

    @staticmethod
    def _same_category(superevent, category):
        return _lower(superevent.get('category')) in (
            category, {'production': 'p', 'test': 't', 'mdc': 'm'}[category])

    def plan(self, event, superevents):
        """What to do with an event, given the superevents near it.

        Parameters
        ----------
        event : dict
            The event as GraceDb has it now.
        superevents : list of dict
            Superevents found in :meth:`query_window` (any category).

        Returns
        -------
        Ignore or Create or Join or Update
        """
        graceid = event.get('graceid')
        for superevent in superevents:
            if graceid in (superevent.get('gw_events') or ()):
                return Update(superevent['superevent_id'])
        if event.get('superevent'):
            return Update(event['superevent'])
        reason = self.ineligibility(event)
        if reason:
            return Ignore(reason)
        category = self.category(event)
        start, end = self.segment(event)
        t = float(event['gpstime'])
        overlapping = [
            s for s in superevents
            if self._same_category(s, category)
            and finite_float(s.get('t_start')) is not None
            and finite_float(s.get('t_end')) is not None
            and float(s['t_start']) <= end and start <= float(s['t_end'])]
        if not overlapping:
            return Create(category, start, t, end, graceid)
        nearest = min(overlapping, key=lambda s: (
            abs(float(s.get('t_0') or s['t_start']) - t),
            str(s['superevent_id'])))
        return Join(nearest['superevent_id'])

    def target(self, superevent, events):
        """``t_start``, ``t_0``, ``t_end``, ``preferred_event`` it should have.

        Parameters
        ----------
        superevent : dict
            The superevent as GraceDb has it now.
        events : list of dict
            All of its events (at least one).
        """
        starts, ends = [], []
        for event in events:
            start, end = self.segment(event)
            starts.append(start)
            ends.append(end)
        if finite_float(superevent.get('t_start')) is not None:
            starts.append(float(superevent['t_start']))
        if finite_float(superevent.get('t_end')) is not None:
            ends.append(float(superevent['t_end']))
        preferred = self.preferred(events)
        return {'t_start': min(starts), 't_0': float(preferred['gpstime']),
                't_end': max(ends), 'preferred_event': preferred['graceid']}

    def changes(self, superevent, events):
        """The fields of :meth:`target` that differ from the superevent now.

        Returns an empty dictionary when nothing needs to change.
        """
        target = self.target(superevent, events)
        changed = {}
        for key, value in target.items():
            current = superevent.get(key)
            if key == 'preferred_event':
                if current != value:
                    changed[key] = value
            elif finite_float(current) is None or not math.isclose(
                    float(current), value, rel_tol=0, abs_tol=TIME_TOLERANCE):
                changed[key] = value
        return changed
