"""BAYESTAR: rapid sky localization of compact-binary candidates.

:func:`localize` runs on the ``openmp`` queue. From a candidate's
``coinc.xml`` (and ``psd.xml.gz`` where the coinc carries no PSD) it
computes a multi-order HEALPix sky map with distance layers with
:func:`ligo.skymap.bayestar.localize` and returns it as FITS bytes, the file
that ``bayestar-localize-coincs`` would write for the same input and the
same options, except for its header: ``OBJECT`` is the graceid and
``REFERENC`` the event's GraceDb page.

BAYESTAR's options are those of ``bayestar-localize-coincs`` but for the
template waveform, :data:`~gwcelery.conf.bayestar_waveform`. Its OpenMP
threads are :data:`~gwcelery.conf.bayestar_omp_num_threads` (by default
OpenMP's own choice: ``OMP_NUM_THREADS`` or every core).

Input that cannot be localized raises a :class:`LocalizationError`
subclass whose message says why: :class:`MalformedInputError` (empty, not
XML, hostile XML, or a coinc that ligo.skymap refuses to read),
:class:`MissingPSDError`, :class:`SingleDetectorError`, and
:class:`LocalizationFailedError` when BAYESTAR itself fails. They are
plain exceptions with one string argument, so they survive the JSON result
backend.

ligo.skymap (and lalsuite) take a second or two to import and are needed
only where sky maps are made, so they are imported on first use, and ahead
of the first task in the pool processes of workers that consume the
``openmp`` queue (``_preload``).
"""
import io
import logging
import zlib

from celery.signals import worker_process_init

from .. import app

__all__ = ('LocalizationError', 'MalformedInputError', 'MissingPSDError',
           'SingleDetectorError', 'LocalizationFailedError', 'carries_psd',
           'read_event', 'event_url', 'localize_to_fits', 'localize',
           'MAX_INPUT_BYTES')

log = logging.getLogger(__name__)

#: Largest coinc.xml or (uncompressed) psd.xml accepted, in bytes.
#: Real ones are tens of kilobytes (coinc) and a few megabytes (PSD).
MAX_INPUT_BYTES = 32 * 1024 * 1024


class LocalizationError(ValueError):
    """The event cannot be localized; the message says why."""


class MalformedInputError(LocalizationError):
    """coinc.xml or psd.xml.gz is empty, not XML, hostile XML, or not a
    document that ligo.skymap can read."""


class MissingPSDError(LocalizationError):
    """No noise PSD for one or more of the event's detectors."""


class SingleDetectorError(LocalizationError):
    """Fewer than two detectors are left to localize with."""


class LocalizationFailedError(LocalizationError):
    """BAYESTAR itself failed on this event."""


def _check_xml(data, what):
    """Refuse hostile or malformed XML before ligo.skymap's parser (which
    would expand entities) sees it: the project's guard, called here and
    nowhere else in this module. Returns the document's lxml root."""
    from ..util.xml import XMLError, parse
    try:
        return parse(data, MAX_INPUT_BYTES)
    except XMLError as e:
        raise MalformedInputError(f'{what} is not acceptable XML: {e}') \
            from None


def _gunzip(data, what):
    """Bytes of a possibly gzipped file, refusing to inflate beyond
    :data:`MAX_INPUT_BYTES` (a small gzip file can hold gigabytes of
    zeros)."""
    if data[:2] != b'\x1f\x8b':
        return data
    limit = MAX_INPUT_BYTES
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        result = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise MalformedInputError(f'{what} is not valid gzip: {e}') from None
    if len(result) > limit:
        raise MalformedInputError(
            f'{what} inflates to more than {limit} bytes')
    if not inflater.eof:
        raise MalformedInputError(f'{what} is truncated gzip data')
    return result


def _input(data, what):
    """``(bytes, lxml root)`` of an input file, checked and uncompressed."""
    if data is None or not len(data):
        raise MalformedInputError(f'{what} is empty')
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_INPUT_BYTES:
        raise MalformedInputError(
            f'{what} is larger than {MAX_INPUT_BYTES} bytes')
    data = _gunzip(bytes(data), what)
    return data, _check_xml(data, what)


def carries_psd(coinc):
    """Whether a coinc.xml holds PSDs of its own (LIGO_LW
    ``REAL8FrequencySeries`` elements), so that it can be localized without
    psd.xml.gz.

    Raises
    ------
    MalformedInputError
        The coinc is empty or not acceptable XML.
    """
    _, root = _input(coinc, 'coinc.xml')
    return any(element.get('Name') == 'REAL8FrequencySeries'
               for element in root.iter('LIGO_LW'))


def read_event(coinc, psd=None, disabled_detectors=None):
    """The ligo.skymap event of a coinc.xml, checked for localization.

    Parameters
    ----------
    coinc : bytes
        The ``coinc.xml`` (optionally gzipped) with one coincidence.
    psd : bytes, optional
        The ``psd.xml.gz``; without it, the PSDs are read from the coinc.
    disabled_detectors : list of str, optional
        Detectors (``'V1'``) to leave out.

    Returns
    -------
    ligo.skymap.io.events.Event

    Raises
    ------
    LocalizationError
        A subclass that says why the event cannot be localized.
    """
    from ligo.skymap.io.events import detector_disabled
    from ligo.skymap.io.events.ligolw import LigoLWEventSource

    coinc, _ = _input(coinc, 'coinc.xml')
    psd = coinc if psd is None else _input(psd, 'psd.xml.gz')[0]
    try:
        # The default coinc definer, as bayestar-localize-coincs: only
        # sngl_inspiral coincidences, not injection-finding ones.
        source = LigoLWEventSource(io.BytesIO(coinc),
                                   psd_file=io.BytesIO(psd))
    except Exception as e:  # the reader raises whatever it meets
        raise MalformedInputError(
            f'ligo.skymap cannot read coinc.xml: {type(e).__name__}: {e}') \
            from None
    if len(source) != 1:
        raise MalformedInputError(
            f'coinc.xml holds {len(source)} inspiral coincidences, not one')
    if disabled_detectors:
        source = detector_disabled.open(source, disabled_detectors,
                                        raises=False)
    event, = source.values()
    detectors = [single.detector for single in event.singles]
    if len(detectors) < 2:
        raise SingleDetectorError(
            f'BAYESTAR needs two or more detectors; this event has '
            f'{", ".join(detectors) or "none"}'
            + (f' once {", ".join(disabled_detectors)} is left out'
               if disabled_detectors else ''))
    missing = []
    for single in event.singles:
        try:
            if single.psd is None:  # an empty series reads as None
                missing.append(single.detector)
        except KeyError:
            missing.append(single.detector)
        except Exception as e:
            raise MalformedInputError(
                f'cannot read the PSDs from '
                f'{"coinc.xml" if psd is coinc else "psd.xml.gz"}: '
                f'{type(e).__name__}: {e}') from None
    if missing:
        where = 'coinc.xml' if psd is coinc else 'psd.xml.gz'
        raise MissingPSDError(
            f'{where} has no PSD for {", ".join(missing)}')
    return event


def event_url(graceid):
    """The GraceDb web page of an event, under
    :data:`~gwcelery.conf.gracedb_url`."""
    root = app.conf.gracedb_url.rstrip('/')
    if root.endswith('/api'):
        root = root[:-len('/api')]
    return f'{root}/events/{graceid}/view/'


def _set_threads():
    threads = app.conf.bayestar_omp_num_threads
    if threads:
        from ligo.skymap import omp
        if omp.num_threads != threads:
            omp.num_threads = int(threads)


def localize_to_fits(event, graceid):
    """Run BAYESTAR on a :func:`read_event` event; FITS bytes.

    Raises
    ------
    LocalizationFailedError
        BAYESTAR failed (a waveform it cannot compute, no convergence, …).
    """
    from ligo.skymap import bayestar
    from ligo.skymap.io import fits

    _set_threads()
    try:
        skymap = bayestar.localize(event, waveform=app.conf.bayestar_waveform)
    except Exception as e:
        # lalsimulation raises RuntimeError, BAYESTAR ValueError or
        # ArithmeticError: all are a property of this input.
        raise LocalizationFailedError(
            f'BAYESTAR failed: {type(e).__name__}: {e}') from None
    skymap.meta['objid'] = str(graceid)
    skymap.meta['url'] = event_url(graceid)
    buffer = io.BytesIO()
    fits.write_sky_map(buffer, skymap, nest=True)
    return buffer.getvalue()


@app.task(queue='openmp', shared=False)
def localize(coinc, graceid, psd=None, disabled_detectors=None):
    """Localize a CBC candidate; return its multi-order FITS sky map.

    Parameters
    ----------
    coinc : bytes
        ``coinc.xml`` with one coincidence.
    graceid : str
        The event, named in the FITS header.
    psd : bytes, optional
        ``psd.xml.gz``, where the coinc carries no PSD.
    disabled_detectors : list of str, optional
        Detectors to leave out.

    Returns
    -------
    bytes
        ``bayestar.multiorder.fits``.

    Raises
    ------
    LocalizationError
        Why the event cannot be localized.
    """
    event = read_event(coinc, psd, disabled_detectors)
    log.info('Localizing %s (%s) with %s', graceid,
             ','.join(s.detector for s in event.singles),
             app.conf.bayestar_waveform)
    return localize_to_fits(event, graceid)


def consumes_openmp():
    """Whether this worker process consumes the ``openmp`` queue."""
    try:
        return 'openmp' in app.amqp.queues.consume_from
    except (AttributeError, TypeError):
        return False


@worker_process_init.connect(weak=False)
def _preload(**kwargs):
    """Import ligo.skymap in the openmp worker's pool processes before
    their first task, so that the first localization does not pay for it.
    It is imported after the fork: OpenMP's threads do not survive one."""
    if consumes_openmp():
        import ligo.skymap.bayestar  # noqa: F401
        import ligo.skymap.io.events.ligolw  # noqa: F401
        import ligo.skymap.io.fits  # noqa: F401
        from ligo.skymap import omp
        _set_threads()
        log.info('ligo.skymap loaded for the openmp queue: %d OpenMP '
                 'threads', omp.num_threads)

