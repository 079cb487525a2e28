"""A bank of simulated compact-binary candidates ("first two years").

Ten coincidences in the format a search pipeline uploads to GraceDb, each a
``coinc.xml`` with its ``psd.xml.gz``: binary neutron stars, neutron
star–black hole and binary black hole mergers seen by LIGO Hanford and
Livingston, three of them also by Virgo. They are simulated, not real
detections; ``make_bank.py`` beside this file regenerates them byte for
byte, and ``bank.json`` lists them (see :func:`events`).

Examples
--------
>>> from io import BytesIO
>>> from ligo.skymap.io.events.ligolw import LigoLWEventSource
>>> from gwcelery.data import first2years
>>> entry = first2years.events()[0]
>>> source = LigoLWEventSource(BytesIO(first2years.read(entry['coinc'])),
...                            psd_file=BytesIO(first2years.read(entry['psd'])))
"""
import copy
import functools
import json
from importlib import resources

__all__ = ('events', 'read')


@functools.cache
def _manifest():
    return json.loads(resources.files(__name__).joinpath('bank.json')
                      .read_text(encoding='utf-8'))


def events():
    """The bank's events, in a fixed order.

    Returns
    -------
    list of dict
        One entry per event (a fresh copy on each call), with keys:

        ``name``
            Short name, such as ``'bns_hl_1'``.
        ``source``
            ``'BNS'``, ``'NSBH'`` or ``'BBH'``.
        ``coinc``, ``psd``
            File names to pass to :func:`read`.
        ``instruments``
            Detectors with a trigger, such as ``['H1', 'L1']``.
        ``gpstime``, ``far``, ``network_snr``, ``snr``
            The candidate's time (GPS s), false-alarm rate (Hz), network
            SNR and SNR per detector.
        ``publishable``
            Whether the FAR passes the public-alert threshold (one per 60
            days with a trials factor of 5).
        ``mass1``, ``mass2``, ``mchirp``
            Template masses (solar masses).
        ``f_low``, ``snr_sample_rate``, ``waveform``
            Low-frequency cutoff (Hz), sample rate of the SNR series (Hz)
            and the template approximant to localize it with.
        ``injection``
            The simulated signal's truth: ``ra``, ``dec``, ``inclination``
            (degrees), ``distance`` (Mpc), ``geocent_time`` (GPS s),
            ``mass1``, ``mass2`` and ``waveform``.
        ``seed``
            The seed that made it.
    """
    return copy.deepcopy(_manifest()['events'])


@functools.cache
def _file_names():
    return frozenset(name for entry in _manifest()['events']
                     for name in (entry['coinc'], entry['psd']))


def read(name):
    """The contents of one of the bank's files.

    Parameters
    ----------
    name : str
        A file name from an entry of :func:`events` (its ``coinc`` or
        ``psd``).

    Returns
    -------
    bytes
        The file as stored (``psd.xml.gz`` files stay gzip-compressed, as
        pipelines upload them).

    Raises
    ------
    KeyError
        If name is not one of the bank's files.
    """
    if name not in _file_names():
        raise KeyError(f'not a file of the first2years bank: {name!r}')
    return resources.files(__name__).joinpath(name).read_bytes()
