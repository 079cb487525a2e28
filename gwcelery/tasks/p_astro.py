"""Probability that a compact-binary candidate is astrophysical, by source
category (BNS, NSBH, BBH) or terrestrial noise.

This is the multi-component FGMC model of Kapadia et al. (2020), Class.
Quantum Grav. 37, 045007 (arXiv:1903.06881), as the ``p-astro`` package
computes it for pipelines without a ranking-statistic histogram of their
own, with the data that the package ships (the O1–O2 mean Poisson counts
per category, their live time, and FAR/SNR thresholds per pipeline and
detector set):

1. The SNR is capped where a pipeline's FAR saturates
   (``ligo.p_astro.computation.choose_snr``): for pycbc and MBTA, an event
   with a FAR below the pipeline's threshold for its detectors counts with
   the threshold SNR. Pipelines or detector sets without thresholds (gstlal,
   spiir, anything else) keep their SNR.
2. The astrophysical Bayes factor is the toy model
   ``3 ρ*³ / ρ⁴ × FAR* / FAR`` (``get_f_over_b``) with ρ* = 8.5 and
   FAR* = one per 30 days.
3. The expected terrestrial count is FAR* times the live time of the
   counts; the category weights come from hard mass cuts on the template
   (both ≤ 3 M☉: BNS; one ≤ 3 M☉ and one above: NSBH; both > 5 M☉: BBH),
   and ``evaluate_p_astro_from_bayesfac`` combines them.

A template with no object at most 3 M☉ and one in the 3–5 M☉ gap belongs
to no category, and the model gives it Terrestrial = 1. A FAR of 0 (which
the mock-event bank has) is taken as the smallest positive FAR, the limit
of the model: Terrestrial ≈ 0.

:func:`compute` is the model as a pure function of plain numbers;
:func:`compute_event` reads them from an event's JSON; the task
:func:`classify_event` writes ``p_astro.json`` (``{"BNS", "NSBH", "BBH",
"Terrestrial"}``) to the event, tagged ``p_astro``, and labels it
``PASTRO_READY``.
"""
import functools
import json
import logging

from .. import app
from ..util.numbers import finite as _number
from . import gracedb

__all__ = ('FILENAME', 'LABEL', 'TAGS', 'FAR_STAR', 'SNR_STAR', 'compute',
           'compute_event', 'classify_event')

log = logging.getLogger(__name__)

#: Name of the file written to the event.
FILENAME = 'p_astro.json'

#: Label applied once the file is there.
LABEL = 'PASTRO_READY'

#: Tags of the log entry.
TAGS = ('p_astro',)

#: FAR threshold (Hz) of the toy foreground/background model, one per 30 d.
FAR_STAR = 1 / (30 * 86400)

#: SNR threshold of the toy foreground/background model.
SNR_STAR = 8.5

#: GraceDb pipeline names (lower case) → keys of p-astro's threshold file.
_PIPELINE_KEYS = {'mbtaonline': 'mbta'}

# A FAR of 0 would divide by zero: the smallest FAR kept is this, at which
# the Bayes factors stay finite.
_MIN_FAR = 1e-300


@functools.lru_cache(maxsize=None)
def _data():
    """The mean counts, live time and thresholds that p-astro ships."""
    from importlib.resources import files

    from ligo.p_astro import data

    folder = files(data)

    def read(name):
        return json.loads(folder.joinpath(name).read_text())

    return (read('H1L1V1-mean_counts-1126051217-61603201.json'),
            read('p_astro_livetime.json')['p_astro_livetime'],
            read('H1L1V1-pipeline-far_snr-thresholds.json'))


def compute(snr, far, mass1, mass2, pipeline, instruments):
    """Source-category probabilities of a candidate.

    Parameters
    ----------
    snr : float
        Network SNR.
    far : float
        False-alarm rate (Hz).
    mass1, mass2 : float
        Template component masses (M☉).
    pipeline : str
        GraceDb pipeline name (``gstlal``, ``pycbc``, ``MBTAOnline``, …).
    instruments : iterable of str
        Detectors of the candidate (``{'H1', 'L1'}``).

    Returns
    -------
    dict
        ``BNS``, ``NSBH``, ``BBH``, ``Terrestrial``: Python floats that sum
        to 1.
    """
    from ligo.p_astro import computation

    snr = _number(snr, 'SNR')
    far = _number(far, 'FAR')
    mass1 = _number(mass1, 'mass1')
    mass2 = _number(mass2, 'mass2')
    if snr <= 0 or far < 0 or mass1 <= 0 or mass2 <= 0:
        raise ValueError(f'SNR and masses must be positive and FAR not '
                         f'negative: snr={snr}, far={far}, mass1={mass1}, '
                         f'mass2={mass2}')
    far = max(far, _MIN_FAR)
    means, livetime, thresholds = _data()
    means = {**means, 'counts_Terrestrial': FAR_STAR * livetime}
    key = _PIPELINE_KEYS.get(pipeline.lower(), pipeline.lower())
    detectors = ','.join(sorted(instruments))
    if detectors in thresholds.get(key, {}):
        snr = computation.choose_snr(far, snr, key, instruments, thresholds)
    bayes_factor = computation.get_f_over_b(far, snr, FAR_STAR, SNR_STAR)
    result = computation.evaluate_p_astro_from_bayesfac(
        bayes_factor, means, mass1, mass2)
    # The package returns NumPy floats, which json cannot write.
    return {name: float(result[name])
            for name in ('BNS', 'NSBH', 'BBH', 'Terrestrial')}


def compute_event(event):
    """:func:`compute` for an event's JSON from GraceDb: network SNR from
    ``CoincInspiral``, template masses from the first ``SingleInspiral``
    row, FAR, pipeline and instruments from the event itself."""
    from .em_bright import template

    graceid = event.get('graceid')
    coinc = (event.get('extra_attributes') or {}).get('CoincInspiral') or {}
    if coinc.get('snr') is None:
        raise ValueError(f'event {graceid} has no CoincInspiral SNR')
    if event.get('far') is None:
        raise ValueError(f'event {graceid} has no FAR')
    mass1, mass2, _, _ = template(event)
    instruments = {name.strip() for name in
                   (event.get('instruments') or '').split(',')
                   if name.strip()}
    return compute(coinc['snr'], event['far'], mass1, mass2,
                   event.get('pipeline') or '', instruments)


@app.task(base=gracedb.GraceDbTask, shared=False)
def classify_event(event):
    """Compute an event's p_astro and record it in GraceDb.

    ``event`` is the event's JSON from GraceDb; the probabilities go to
    :data:`FILENAME` with :data:`TAGS` and :data:`LABEL`
    (:func:`~gwcelery.tasks.gracedb.write_json_with_label`) and are
    returned.
    """
    graceid = event['graceid']
    result = compute_event(event)
    message = 'Source probabilities (p_astro): ' + ', '.join(
        f'{name} {value:.3g}' for name, value in result.items())
    gracedb.write_json_with_label(graceid, FILENAME, result, message, TAGS,
                                  LABEL)
    log.info('%s: %s', graceid, message)
    return result
