"""VOEvent 2.0 XML of LVC notices, as GraceDb builds them for superevents.

The parameters follow the LVC notices of the third observing run (see the
GCN documentation of LVC notices): ``Packet_Type`` (150 preliminary, 151
initial, 152 update, 163 early warning, 164 retraction), ``Pkt_Ser_Num``,
``GraceID``, ``AlertType``, ``HardwareInj``, ``OpenAlert``, ``EventPage``,
``Instruments``, ``FAR``, ``Group``, ``Pipeline``, ``Search``, a
``GW_SKYMAP`` group with the sky map's URL, ``Classification`` (BNS, NSBH,
BBH, Terrestrial) and ``Properties`` (HasNS, HasRemnant, HasMassGap)
groups, the time of ``t_0`` in ``WhereWhen``, and for updates and
retractions a ``Citations`` element pointing at the earlier notice. A
retraction carries only the identification parameters.
"""
import datetime

import voeventparse
from lxml import etree

from . import gpstime

__all__ = ('VOEVENT_TYPES', 'PACKET_TYPES', 'build_voevent', 'ivorn')

#: VOEvent types (code → name), as the service root lists them.
VOEVENT_TYPES = {'PR': 'preliminary', 'IN': 'initial', 'UP': 'update',
                 'RE': 'retraction', 'EW': 'earlywarning'}

#: GCN notice type numbers.
PACKET_TYPES = {'PR': 150, 'IN': 151, 'UP': 152, 'RE': 164, 'EW': 163}

_ALERT_TYPE = {'PR': 'Preliminary', 'IN': 'Initial', 'UP': 'Update',
               'RE': 'Retraction', 'EW': 'EarlyWarning'}

_STREAM = 'gwnet/LVC'

_CLASSIFICATION = ('BNS', 'NSBH', 'BBH', 'Terrestrial')
_PROPERTIES = (('HasNS', 'ProbHasNS'), ('HasRemnant', 'ProbHasRemnant'),
               ('HasMassGap', 'HasMassGap'))


def ivorn(superevent_id, n, voevent_type):
    """IVORN of a notice: ``ivo://gwnet/LVC#S190425z-1-Preliminary``."""
    return (f'ivo://{_STREAM}#{superevent_id}-{n}-'
            f'{_ALERT_TYPE[voevent_type]}')


def _param(parent, name, value, description=None, **attributes):
    """A ``Param``: ints and floats get their ``dataType`` from
    voevent-parse's automatic conversion, everything else is a string."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        value = str(value)
        attributes.setdefault('dataType', 'string')
    element = voeventparse.Param(name, value, ac=True, **attributes)
    if description:
        element.Description = description
    parent.append(element)
    return element


def _group(parent, params, description=None, **attributes):
    """A ``Group``; its description, if any, comes before its params."""
    group = voeventparse.Group([], **attributes)
    if description:
        group.Description = description
    parent.append(group)
    for name, value in params:
        _param(group, name, float(value), ucd='stat.probability')
    return group


def _where_when(root, t_0):
    # voevent-parse's add_where_when needs a sky position and a datetime;
    # an LVC notice has no position, and its time may be a leap second.
    location = etree.SubElement(root.WhereWhen, 'ObsDataLocation')
    etree.SubElement(location, 'ObservatoryLocation', id='LIGO Virgo')
    observation = etree.SubElement(location, 'ObservationLocation')
    etree.SubElement(observation, 'AstroCoordSystem', id='UTC-FK5-GEO')
    coords = etree.SubElement(observation, 'AstroCoords',
                              coord_system_id='UTC-FK5-GEO')
    instant = etree.SubElement(etree.SubElement(coords, 'Time'),
                               'TimeInstant')
    instant.ISOTime = gpstime.gps_to_isot(t_0) + 'Z'


def _citations(root, voevent_type, previous_ivorns):
    # voevent-parse's add_citations uses collections.Iterable, which
    # Python 3.10 removed; its EventIvorn elements are appended here.
    citations = etree.SubElement(root, 'Citations')
    for previous in previous_ivorns:
        citations.append(voeventparse.EventIvorn(
            previous, 'retraction' if voevent_type == 'RE'
            else 'supersedes'))
    citations.Description = (
        'Determined to not be a viable GW event candidate'
        if voevent_type == 'RE' else 'Updated localization is now '
        'available')


def build_voevent(superevent, event, n, voevent_type, options, skymap_url,
                  event_page, previous_ivorns=(), now=None):
    """The XML of one notice.

    Parameters
    ----------
    superevent : dict
        ``superevent_id``, ``category`` (``P``, ``T``, ``M``), ``t_0``.
    event : dict
        The preferred event: ``group``, ``pipeline``, ``search``, ``far``,
        ``instruments``.
    n : int
        Serial number of this notice for the superevent.
    voevent_type : str
        ``PR``, ``IN``, ``UP``, ``RE`` or ``EW``.
    options : dict
        The request's fields: ``internal``, ``open_alert``,
        ``hardware_inj``, ``CoincComment``, ``skymap_type``, ``ProbHasNS``,
        ``ProbHasRemnant``, ``HasMassGap``, ``BNS``, ``NSBH``, ``BBH``,
        ``Terrestrial`` (already converted to bools and floats).
    skymap_url : str or None
        Address of the sky map file.
    event_page : str
        Address of the superevent's web page.
    previous_ivorns : sequence of str
        IVORNs of the earlier notices of the superevent, cited by updates
        and retractions.
    now : datetime.datetime, optional
        Time of writing, for ``Who/Date``; the current time by default.
        A naive one is taken as UTC.

    Returns
    -------
    tuple
        ``(ivorn, xml bytes)``.
    """
    sid = superevent['superevent_id']
    this_ivorn = ivorn(sid, n, voevent_type)
    root = voeventparse.Voevent(
        _STREAM, this_ivorn.split('#', 1)[1],
        'observation' if superevent['category'] == 'P' else 'test')
    # voevent-parse signs its packets in Who; LVC notices do not.
    del root.Who.Description
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now.tzinfo is not None:
        # Written as UTC without a zone, as GraceDb writes it.
        now = now.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    voeventparse.set_who(root, date=now)
    voeventparse.set_author(root, contactName=(
        'LIGO Scientific Collaboration, Virgo Collaboration and KAGRA '
        'Collaboration'))

    what = root.What
    _param(what, 'internal', int(bool(options.get('internal'))),
           'Indicates whether this event should be distributed to '
           'LSC/Virgo/KAGRA members only')
    _param(what, 'Packet_Type', PACKET_TYPES[voevent_type],
           'The Notice Type number is assigned/used within GCN')
    _param(what, 'Pkt_Ser_Num', str(n),
           'A number that increments by 1 each time a new revision is '
           'issued for this event')
    _param(what, 'GraceID', sid, 'Identifier in GraceDB', ucd='meta.id')
    _param(what, 'AlertType', _ALERT_TYPE[voevent_type],
           'VOEvent alert type', ucd='meta.version')
    _param(what, 'HardwareInj', int(bool(options.get('hardware_inj'))),
           'Indicates that this event is a hardware injection if 1, no if 0',
           ucd='meta.number')
    _param(what, 'OpenAlert', int(bool(options.get('open_alert'))),
           'Indicates that this event is an open alert if 1, no if 0',
           ucd='meta.number')
    _param(what, 'EventPage', event_page,
           'Web page for evolving status of this GW candidate',
           ucd='meta.ref.url')
    if voevent_type != 'RE':
        _param(what, 'Instruments', event.get('instruments') or '',
               'List of instruments used in analysis to identify this '
               'event', ucd='meta.code')
        if event.get('far') is not None:
            _param(what, 'FAR', float(event['far']),
                   'False alarm rate for GW candidates with this strength '
                   'or greater', ucd='arith.rate;stat.falsealarm', unit='Hz')
        _param(what, 'Group', event.get('group') or '',
               'Data analysis working group', ucd='meta.code')
        _param(what, 'Pipeline', event.get('pipeline') or '',
               'Low-latency data analysis pipeline', ucd='meta.code')
        _param(what, 'Search', event.get('search') or '',
               'Specific low-latency search', ucd='meta.code')
        if skymap_url:
            group = _group(what, [], type='GW_SKYMAP',
                           name=options.get('skymap_type') or 'skymap')
            _param(group, 'skymap_fits', skymap_url, 'Sky Map FITS',
                   ucd='meta.ref.url')
        classification = [(k, options[k]) for k in _CLASSIFICATION
                          if options.get(k) is not None]
        if classification:
            _group(what, classification, type='Classification',
                   description='Source classification: binary neutron star '
                   '(BNS), neutron star-black hole (NSBH), binary black hole '
                   '(BBH), or terrestrial (noise)')
        properties = [(name, options[key]) for name, key in _PROPERTIES
                      if options.get(key) is not None]
        if properties:
            _group(what, properties, type='Properties',
                   description='Qualitative properties of the source, '
                   'conditioned on the assumption that the signal is an '
                   'astrophysical compact binary merger')

    _where_when(root, superevent['t_0'])
    voeventparse.add_how(root, descriptions=(
        'Candidate gravitational wave event identified by low-latency '
        'analysis'))
    if voevent_type in ('UP', 'RE') and previous_ivorns:
        _citations(root, voevent_type, previous_ivorns)
    root.Description = 'Report of a candidate gravitational wave event'
    return this_ivorn, voeventparse.dumps(root, pretty_print=True)
