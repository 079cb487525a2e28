"""The orchestrator's rules for notices, as pure functions of GraceDb's
JSON: which kinds there are, what each needs, when one must not be sent,
and the VOEvent parameters it is created with.

A superevent's notices are told apart by their *kind*:

``preliminary-1``, ``preliminary-2``
    The preliminary notice, and the second one that follows if the
    preferred event changed (VOEvent type ``PR``).
``initial``
    After a person's ``ADVOK`` (``IN``).
``update:<sky map>,<version>``
    For one version of a sky map of the superevent (``UP``); a sky map
    gets at most one update.
``retraction``
    After ``ADVNO`` (``RE``).

Each kind is sent at most once per superevent (see :doc:`/alerts`).
"""
import math

__all__ = ('INITIAL', 'RETRACTION', 'SKYMAP_ENDINGS', 'preliminary',
           'update', 'voevent_type', 'carries_event_products', 'is_skymap',
           'skymap_type', 'refusal', 'unpublishable', 'voevent_options')

INITIAL = 'initial'
RETRACTION = 'retraction'

#: Endings of the names of sky-map files.
SKYMAP_ENDINGS = ('.multiorder.fits', '.fits', '.fits.gz')

#: Labels that stop every notice but a retraction.
RETRACTED = 'ADVNO'

#: Label of a hardware injection.
INJECTION = 'INJ'


def preliminary(n):
    """The kind of the ``n``-th preliminary notice (from 1)."""
    return f'preliminary-{int(n)}'


def update(skymap):
    """The kind of the update for one version of a sky map
    (``'bilby.multiorder.fits,1'``)."""
    return f'update:{skymap}'


def voevent_type(kind):
    """GraceDb's VOEvent type of a kind: ``PR``, ``IN``, ``UP``, ``RE``."""
    if kind.startswith('preliminary-'):
        return 'PR'
    if kind == INITIAL:
        return 'IN'
    if kind.startswith('update:'):
        return 'UP'
    if kind == RETRACTION:
        return 'RE'
    raise ValueError(f'not a notice kind: {kind!r}')


def carries_event_products(kind):
    """Whether a notice of this kind carries the sky map and classification
    of an event (copied to the superevent first): preliminary and initial
    notices. Updates carry a sky map of the superevent; retractions
    nothing."""
    return kind.startswith('preliminary-') or kind == INITIAL


def is_skymap(filename):
    """Whether a file name (without version) is a sky map's."""
    return str(filename or '').endswith(SKYMAP_ENDINGS)


def skymap_type(filename):
    """The ``skymap_type`` of a sky map in a VOEvent: its file name up to
    the first dot (``bayestar``)."""
    return str(filename).partition(',')[0].split('.', 1)[0]


def _category(superevent):
    return str(superevent.get('category') or '').lower()


def refusal(kind, superevent, sent):
    """Why a notice must not be sent, or ``None``.

    Parameters
    ----------
    kind : str
    superevent : dict
        The superevent's JSON (``category``, ``labels``).
    sent : set of str
        Kinds of the superevent's notices sent already.
    """
    labels = set(superevent.get('labels') or ())
    if _category(superevent) in ('test', 't'):
        return ('notices of Test superevents are never sent: they come from '
                'uploads of the Test group, not from candidates')
    if kind != RETRACTION and RETRACTED in labels:
        return f'the superevent is labelled {RETRACTED} (retracted)'
    if kind == RETRACTION or kind.startswith('update:'):
        if not sent:
            return (f'no notice of the superevent was sent, so there is '
                    f'nothing to {"retract" if kind == RETRACTION else "update"}')
    return None


def unpublishable(event, rules):
    """Why an event's FAR does not allow a preliminary notice, or ``None``.

    Parameters
    ----------
    event : dict
        The event's JSON.
    rules : gwcelery.superevent_rules.Rules
        Its ``is_publishable`` decides (FAR × trials factor ≤ threshold).
    """
    if rules.is_publishable(event):
        return None
    kind = rules.kind(event)
    far = event.get('far')
    threshold = rules.publish_far_threshold.get(kind)
    if far is None or threshold is None:
        return f'{event.get("graceid")} has no FAR or no public-alert threshold'
    trials = rules.trials_factor.get(kind, 1.0)
    return (f'{event.get("graceid")} is not publishable: FAR {far:g} Hz × '
            f'trials factor {trials:g} = {far * trials:g} Hz is above the '
            f'{kind.upper()} threshold of {threshold:g} Hz')


def _probability(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and 0 <= value <= 1 else None


def voevent_options(superevent, skymap_filename=None, em_bright=None,
                    p_astro=None):
    """Keyword arguments of ``create_voevent`` for a notice.

    Parameters
    ----------
    superevent : dict
        The superevent's JSON (its ``labels``: ``INJ`` marks a hardware
        injection).
    skymap_filename : str, optional
        Name (without version) of the sky map on the superevent.
    em_bright : dict, optional
        ``em_bright.json``: ``HasNS``, ``HasRemnant``.
    p_astro : dict, optional
        ``p_astro.json``: ``BNS``, ``NSBH``, ``BBH``, ``Terrestrial``.

    Returns
    -------
    dict
        Probabilities that are not numbers between 0 and 1 are left out.
    """
    labels = set(superevent.get('labels') or ())
    options = {'internal': False, 'open_alert': True,
               'hardware_inj': INJECTION in labels}
    if skymap_filename:
        options['skymap_filename'] = skymap_filename
        options['skymap_type'] = skymap_type(skymap_filename)
    for key in ('HasNS', 'HasRemnant'):
        value = _probability((em_bright or {}).get(key))
        if value is not None:
            options[f'Prob{key}'] = value
    for key in ('BNS', 'NSBH', 'BBH', 'Terrestrial'):
        value = _probability((p_astro or {}).get(key))
        if value is not None:
            options[key] = value
    return options
