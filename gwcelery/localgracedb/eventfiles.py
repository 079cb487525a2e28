"""Reading the files that create events.

========  ===========================================  =====================
group     file                                         fills
========  ===========================================  =====================
CBC/Test  LIGO_LW ``coinc.xml`` (optionally gzipped)   gpstime, far,
          with ``coinc_inspiral``, ``coinc_event``,    instruments, nevents,
          ``sngl_inspiral`` tables                     likelihood,
                                                       CoincInspiral,
                                                       SingleInspiral
Burst     LIGO_LW with a ``multi_burst`` table; cWB's  gpstime, far,
          ASCII trigger file (``key: values`` lines);  instruments,
          oLIB's JSON                                  MultiBurst or
                                                       LalInferenceBurst
External  a GCN VOEvent (Fermi, Swift, INTEGRAL,       gpstime, GRB (ivorn,
          AGILE, SNEWS, …)                             trigger_id, ra, dec,
                                                       error_radius, …)
========  ===========================================  =====================

The kind of file is recognized by its content, so a Test event may be made
from any of them; any of them may be gzip-compressed. XML is read under the
policy of :mod:`gwcelery.util.xml`, up to :data:`MAX_XML_BYTES`. Every
reader raises :class:`ValueError` with a reason that the server returns as
a 400 response.
"""
import json
import zlib

from . import gpstime, ligolw
from ..util.numbers import finite as _number
from ..util.xml import parse

__all__ = ('read_event_file', 'MAX_XML_BYTES')

MAX_XML_BYTES = 32 * 1024 * 1024
"""Largest event file read (bytes, after decompression)."""

_SKIP_COLUMNS = {'process_id', 'event_id', 'coinc_event_id',
                 'coinc_def_id', 'time_slide_id'}

# The LIGO_LW tables that events are made from; igwn-ligolw skips the rest.
_TABLES = frozenset({'coinc_inspiral', 'coinc_event', 'sngl_inspiral',
                     'multi_burst'})


def _from_coinc(tables):
    coinc = (tables.get('coinc_inspiral') or [None])[0]
    if coinc is None:
        raise ValueError('coinc.xml has no coinc_inspiral row')
    if coinc.get('end_time') is None:
        raise ValueError('coinc_inspiral has no end_time')
    gpstime = coinc['end_time'] + 1e-9 * (coinc.get('end_time_ns') or 0)
    event = (tables.get('coinc_event') or [{}])[0]
    singles = [{k: v for k, v in row.items() if k not in _SKIP_COLUMNS}
               for row in tables.get('sngl_inspiral', [])]
    instruments = coinc.get('ifos') or event.get('instruments') or ','.join(
        sorted(row.get('ifo') for row in singles if row.get('ifo')))
    return {
        'gpstime': gpstime,
        'far': coinc.get('combined_far'),
        'instruments': instruments or '',
        'nevents': event.get('nevents', len(singles)),
        'likelihood': event.get('likelihood'),
        'extra_attributes': {
            'CoincInspiral': {k: v for k, v in coinc.items()
                              if k not in _SKIP_COLUMNS},
            'SingleInspiral': singles,
        },
    }


def _from_multi_burst(tables):
    burst = tables['multi_burst'][0]
    peak = burst.get('peak_time') or burst.get('start_time')
    if peak is None:
        raise ValueError('multi_burst has neither peak_time nor start_time')
    ns = burst.get('peak_time_ns' if burst.get('peak_time') is not None
                   else 'start_time_ns') or 0
    event = (tables.get('coinc_event') or [{}])[0]
    return {
        'gpstime': peak + 1e-9 * ns,
        'far': burst.get('false_alarm_rate'),
        'instruments': burst.get('ifos') or event.get('instruments') or '',
        'nevents': event.get('nevents'),
        'likelihood': event.get('likelihood'),
        'extra_attributes': {'MultiBurst': {
            k: v for k, v in burst.items() if k not in _SKIP_COLUMNS}},
    }


def _from_cwb(text):
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep and key.strip():
            fields[key.strip().lower()] = value.split()
    if 'time' not in fields or not fields['time']:
        raise ValueError('cWB trigger file has no "time:" line')
    ifos = fields.get('ifo', [])

    def first(key, what=None):
        values = fields.get(key)
        return _number(values[0], what or key) if values else None

    far = first('far')
    if far is None and fields.get('rate'):
        far = first('rate')
    multi = {
        'ifos': ','.join(ifos),
        'start_time': first('start'),
        'peak_time': first('time'),
        'duration': first('duration'),
        'central_freq': first('frequency'),
        'bandwidth': first('bandwidth'),
        'snr': first('snr') or first('rho'),
        'amplitude': first('rho'),
        'likelihood': first('likelihood'),
        'false_alarm_rate': far,
    }
    return {
        'gpstime': multi['peak_time'],
        'far': far,
        'instruments': multi['ifos'],
        'nevents': len(ifos) or None,
        'likelihood': multi['likelihood'],
        'extra_attributes': {'MultiBurst': multi},
    }


def _from_olib(data):
    if not isinstance(data, dict):
        raise ValueError('oLIB event file must be a JSON object')
    if 'gpstime' not in data:
        raise ValueError('oLIB event file has no "gpstime"')
    instruments = data.get('instruments', '')
    if isinstance(instruments, list):
        instruments = ','.join(instruments)

    def get(key):
        return None if data.get(key) is None else _number(data[key], key)

    return {
        'gpstime': get('gpstime'),
        'far': get('FAR') if 'FAR' in data else get('far'),
        'instruments': instruments,
        'nevents': None,
        'likelihood': get('likelihood'),
        'extra_attributes': {'LalInferenceBurst': {
            'quality_mean': get('quality'),
            'frequency_mean': get('frequency'),
            'hrss_mean': get('hrss'),
            'bci': get('BCI'),
            'bsn': get('BSN'),
            'omicron_snr_network': get('Omicron SNR'),
        }},
    }


def _local(element):
    return element.tag.rsplit('}', 1)[-1] if isinstance(
        element.tag, str) else ''


def _child(element, *path):
    """The first element down a path of local names; ``None`` if there is
    none (or if ``element`` is ``None``)."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c) == name), None)
    return element


def _text(element):
    return (element.text or '').strip() if element is not None else ''


def _attribute(element, name):
    return element.get(name, '') if element is not None else ''


def _optional_number(text, what):
    return _number(text, what) if text else None


def _from_voevent(root):
    """The ``GRB`` attributes that GraceDb fills from a GCN notice."""
    params = {}
    what = _child(root, 'What')
    for p in what.iter() if what is not None else ():
        if _local(p) == 'Param' and p.get('name'):
            params.setdefault(p.get('name'), (p.get('value') or '').strip())
    location = _child(root, 'WhereWhen', 'ObsDataLocation')
    coords = _child(location, 'ObservationLocation', 'AstroCoords')
    position = _child(coords, 'Position2D')
    iso = _text(_child(coords, 'Time', 'TimeInstant', 'ISOTime'))
    if not iso:
        raise ValueError('VOEvent has no WhereWhen ISOTime')
    try:
        gps = gpstime.isot_to_gps(iso)
    except ValueError as e:
        raise ValueError(f'VOEvent ISOTime: {e}') from None
    grb = {
        'ivorn': root.get('ivorn', ''),
        'author_ivorn': _text(_child(root, 'Who', 'AuthorIVORN')),
        'author_shortname': _text(_child(root, 'Who', 'Author', 'shortName')),
        'observatory_location_id': _attribute(
            _child(location, 'ObservatoryLocation'), 'id'),
        'coord_system': _attribute(coords, 'coord_system_id'),
        'ra': _optional_number(_text(_child(position, 'Value2', 'C1')), 'C1'),
        'dec': _optional_number(_text(_child(position, 'Value2', 'C2')),
                                'C2'),
        'error_radius': _optional_number(
            _text(_child(position, 'Error2Radius')), 'Error2Radius'),
        'how_description': _text(_child(root, 'How', 'Description')),
        'how_reference_url': _attribute(_child(root, 'How', 'Reference'),
                                        'uri'),
        'trigger_duration': _optional_number(
            params.get('Trigger_Duration') or params.get('Trans_Duration'),
            'trigger duration'),
        'trigger_id': params.get('TrigID') or params.get('Trans_Num'),
        'T90': None,
        'designation': None,
        'redshift': None,
    }
    return {
        'gpstime': gps,
        'far': None,
        'instruments': '',
        'nevents': None,
        'likelihood': None,
        'extra_attributes': {'GRB': grb},
    }


def _gunzip(data, max_size):
    # Never more than the limit: a small upload may decompress to gigabytes.
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = decompressor.decompress(data, max_size + 1)
    except zlib.error as e:
        raise ValueError(f'bad gzip data: {e}') from None
    if len(plain) > max_size:
        raise ValueError('gzip-compressed event file is over the limit of '
                         f'{max_size} bytes once decompressed')
    if not decompressor.eof:
        raise ValueError('gzip data is cut short')
    return plain


def read_event_file(data):
    """Event fields from the content of an uploaded event file.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    dict
        ``gpstime``, ``far``, ``instruments``, ``nevents``, ``likelihood``
        and ``extra_attributes``.

    Raises
    ------
    ValueError
        The file is of no known kind, or lacks what its kind needs.
    """
    if data[:2] == b'\x1f\x8b':
        data = _gunzip(data, MAX_XML_BYTES)
    head = data.lstrip()[:1]
    if head == b'<':
        if b'<LIGO_LW' in data[:4096]:
            tables = ligolw.read_tables(data, MAX_XML_BYTES, _TABLES)
            if tables.get('coinc_inspiral'):
                return _from_coinc(tables)
            if tables.get('multi_burst'):
                return _from_multi_burst(tables)
            raise ValueError('LIGO_LW file has neither a coinc_inspiral '
                             'nor a multi_burst table')
        root = parse(data, MAX_XML_BYTES)
        if _local(root) == 'VOEvent':
            return _from_voevent(root)
        raise ValueError(f'unknown XML event file (root {_local(root)!r})')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise ValueError('event file is neither XML nor UTF-8 text') from None
    if head in (b'{', b'['):
        try:
            return _from_olib(json.loads(text))
        except json.JSONDecodeError as e:
            raise ValueError(f'malformed JSON event file: {e}') from None
    return _from_cwb(text)
