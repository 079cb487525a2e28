"""Mock events made from the first2years bank: times moved to now, copies
as several pipelines would upload them, and a gamma-ray burst to go with
them.

Pure functions on bytes; :mod:`gwcelery.tasks.first2years` uploads what
they make.

Moving a candidate in time by a whole number of sidereal days
(:data:`SIDEREAL_DAY`) keeps its geometry: the Earth, and the detectors on
it, face the same stars, so the same source produces the same delays,
phases and amplitudes between the detectors and localizes to the same
right ascension and declination. :func:`shift` rewrites every time of the
coinc (``coinc_inspiral``, ``sngl_inspiral`` end times and their
sidereal times, and the epochs of the SNR time series) with igwn-ligolw;
:func:`near_copy` makes the slightly different copy that another search
would upload of the same signal.
"""
import io
import math
import re
import uuid

__all__ = ('SIDEREAL_DAY', 'load', 'dump', 'event_time', 'psd_name',
           'shift', 'near_copy', 'grb_notice')

#: One rotation of the Earth against the stars, in seconds (a sidereal day).
SIDEREAL_DAY = 86164.0905


def load(coinc):
    """Parse a coinc.xml (bytes) into an igwn-ligolw document."""
    # lsctables registers its table classes when imported; a document
    # parsed before that has plain tables, without the rows' time
    # properties.
    from igwn_ligolw import lsctables, utils  # noqa: F401
    return utils.load_fileobj(io.BytesIO(coinc))


def dump(xmldoc):
    """The document as bytes."""
    from igwn_ligolw import utils
    out = io.BytesIO()
    utils.write_fileobj(xmldoc, out)
    return out.getvalue()


def _tables(xmldoc):
    from igwn_ligolw import lsctables
    return (lsctables.CoincInspiralTable.get_table(xmldoc),
            lsctables.SnglInspiralTable.get_table(xmldoc))


def event_time(xmldoc):
    """The candidate's time (GPS seconds, float) from ``coinc_inspiral``."""
    coinc_inspiral, _ = _tables(xmldoc)
    return float(coinc_inspiral[0].end)


def psd_name(xmldoc):
    """The PSD file that the coinc's ``process_params`` names in
    ``--reference-psd``, or ``None``."""
    from igwn_ligolw import lsctables
    for row in lsctables.ProcessParamsTable.get_table(xmldoc):
        if row.param == '--reference-psd':
            return row.value
    return None


def _series(xmldoc):
    """The LIGO_LW elements of the SNR time series."""
    from igwn_ligolw import ligolw
    return [element for element in xmldoc.getElementsByTagName(
        ligolw.LIGO_LW.tagName)
        if element.hasAttribute('Name')
        and element.Name == 'COMPLEX8TimeSeries']


def _move(xmldoc, seconds):
    """Add seconds (float) to every time of the candidate."""
    import lal
    from igwn_ligolw import ligolw

    coinc_inspiral, sngl_inspiral = _tables(xmldoc)
    for row in coinc_inspiral:
        row.end = row.end + seconds
    for row in sngl_inspiral:
        row.end = row.end + seconds
        if 'end_time_gmst' in sngl_inspiral.columnnames:
            row.end_time_gmst = lal.GreenwichMeanSiderealTime(row.end)
    for series in _series(xmldoc):
        for element in series.getElementsByTagName(ligolw.Time.tagName):
            if element.Name == 'epoch':
                element.pcdata = element.pcdata + seconds


def shift(xmldoc, now):
    """Move the candidate by whole sidereal days to the latest time not
    after ``now``; the document is changed in place.

    Parameters
    ----------
    xmldoc : igwn_ligolw.ligolw.Document
        A coinc from :func:`load`.
    now : float
        GPS time.

    Returns
    -------
    float
        The shift in seconds (a multiple of :data:`SIDEREAL_DAY`).
    """
    days = math.floor((now - event_time(xmldoc)) / SIDEREAL_DAY)
    seconds = days * SIDEREAL_DAY
    _move(xmldoc, seconds)
    return seconds


def near_copy(xmldoc, rng, snr_jitter=0.01, time_jitter=0.005,
              far_jitter=0.3):
    """Make the document what another search would upload for the same
    signal; in place.

    The SNRs (network, single-detector and the SNR series) are scaled by
    one factor near 1, every time moves by one offset of a few
    milliseconds (so the delays between detectors stay as they are), and
    the FAR is multiplied by a factor of the same order of magnitude.

    Parameters
    ----------
    xmldoc : igwn_ligolw.ligolw.Document
    rng : random.Random
    snr_jitter : float
        Standard deviation of the relative SNR change.
    time_jitter : float
        Largest time offset (seconds).
    far_jitter : float
        Largest change of log10(FAR).
    """
    from igwn_ligolw import ligolw

    scale = max(0.5, rng.gauss(1.0, snr_jitter))
    far_factor = 10 ** rng.uniform(-far_jitter, far_jitter)
    coinc_inspiral, sngl_inspiral = _tables(xmldoc)
    for row in coinc_inspiral:
        row.snr = row.snr * scale
        for column in ('combined_far', 'false_alarm_rate'):
            value = getattr(row, column, None)
            if value is not None:
                setattr(row, column, value * far_factor)
    for row in sngl_inspiral:
        row.snr = row.snr * scale
    for series in _series(xmldoc):
        for array in series.getElementsByTagName(ligolw.Array.tagName):
            # Rows: time, real part, imaginary part.
            array.array[1:] *= scale
    _move(xmldoc, rng.uniform(-time_jitter, time_jitter))


_ISO_TIME = re.compile(rb'<ISOTime>[^<]*</ISOTime>')


def _param(payload, name, value):
    pattern = re.compile(
        rb'(<Param\s+name="' + name.encode() + rb'"\s+value=")[^"]*(")')
    new, count = pattern.subn(lambda m: m.group(1) + value.encode()
                              + m.group(2), payload)
    if not count:
        raise ValueError(f'the notice has no {name} Param')
    return new


def grb_notice(template, gpstime, trigger_id=None):
    """A Fermi GBM notice of a burst at gpstime, made from a real one.

    The burst's time (``ISOTime``, ``Burst_TJD`` and ``Burst_SOD``), the
    trigger id (``TrigID``) and the IVORN, which holds both, are
    rewritten; the rest (position, classification) is the template's.

    Parameters
    ----------
    template : bytes
        A Fermi GBM VOEvent.
    gpstime : float
        The burst's time (GPS seconds).
    trigger_id : int, optional
        The new TrigID (default: a random 9-digit number).

    Returns
    -------
    bytes
    """
    from astropy.time import Time

    if trigger_id is None:
        trigger_id = 100_000_000 + uuid.uuid4().int % 900_000_000
    when = Time(gpstime, format='gps', scale='utc')
    iso = when.utc.isot[:22]  # hundredths of a second, as GCN writes it
    mjd = when.utc.mjd
    payload = _ISO_TIME.sub(f'<ISOTime>{iso}Z</ISOTime>'.encode(), template,
                            count=1)
    payload = _param(payload, 'TrigID', str(trigger_id))
    # Truncated Julian Day: MJD - 40000.
    payload = _param(payload, 'Burst_TJD', str(int(mjd) - 40000))
    payload = _param(payload, 'Burst_SOD', f'{(mjd % 1) * 86400:.2f}')
    ivorn = re.compile(rb'(ivorn="[^"#]*#[A-Za-z_]+)[^"]*(")')
    suffix = f'{iso}_{trigger_id}_0-{uuid.uuid4().int % 1000:03d}'
    payload, count = ivorn.subn(
        lambda m: m.group(1) + suffix.encode() + m.group(2), payload,
        count=1)
    if not count:
        raise ValueError('the notice has no IVORN to rewrite')
    return payload
