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

from lxml import etree

from . import gpstime

__all__ = ('VOEVENT_TYPES', 'PACKET_TYPES', 'build_voevent', 'ivorn')

#: VOEvent types: code → name, as the service root lists them.
VOEVENT_TYPES = {'PR': 'preliminary', 'IN': 'initial', 'UP': 'update',
                 'RE': 'retraction', 'EW': 'earlywarning'}

#: GCN notice type numbers.
PACKET_TYPES = {'PR': 150, 'IN': 151, 'UP': 152, 'RE': 164, 'EW': 163}

_ALERT_TYPE = {'PR': 'Preliminary', 'IN': 'Initial', 'UP': 'Update',
               'RE': 'Retraction', 'EW': 'EarlyWarning'}

_VOE = 'http://www.ivoa.net/xml/VOEvent/v2.0'
_XSI = 'http://www.w3.org/2001/XMLSchema-instance'

_CLASSIFICATION = ('BNS', 'NSBH', 'BBH', 'Terrestrial')
_PROPERTIES = (('HasNS', 'ProbHasNS'), ('HasRemnant', 'ProbHasRemnant'),
               ('HasMassGap', 'HasMassGap'))


def ivorn(superevent_id, n, voevent_type):
    """IVORN of a notice: ``ivo://gwnet/LVC#S190425z-1-Preliminary``."""
    return (f'ivo://gwnet/LVC#{superevent_id}-{n}-'
            f'{_ALERT_TYPE[voevent_type]}')


def _param(parent, name, value, data_type, ucd=None, unit=None,
           description=None):
    element = etree.SubElement(parent, 'Param', name=name,
                               dataType=data_type, value=str(value))
    if ucd:
        element.set('ucd', ucd)
    if unit is not None:
        element.set('unit', unit)
    if description:
        etree.SubElement(element, 'Description').text = description
    return element


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

    Returns
    -------
    tuple
        ``(ivorn, xml bytes)``.
    """
    sid = superevent['superevent_id']
    this_ivorn = ivorn(sid, n, voevent_type)
    role = 'observation' if superevent['category'] == 'P' else 'test'
    root = etree.Element(f'{{{_VOE}}}VOEvent', nsmap={'voe': _VOE,
                                                      'xsi': _XSI})
    root.set(f'{{{_XSI}}}schemaLocation',
             f'{_VOE} http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd')
    root.set('version', '2.0')
    root.set('role', role)
    root.set('ivorn', this_ivorn)

    who = etree.SubElement(root, 'Who')
    etree.SubElement(who, 'Date').text = (
        now or datetime.datetime.now(datetime.timezone.utc)).strftime(
            '%Y-%m-%dT%H:%M:%S')
    author = etree.SubElement(who, 'Author')
    etree.SubElement(author, 'contactName').text = (
        'LIGO Scientific Collaboration, Virgo Collaboration and KAGRA '
        'Collaboration')

    what = etree.SubElement(root, 'What')
    _param(what, 'internal', int(bool(options.get('internal'))), 'int',
           description='Indicates whether this event should be distributed '
                       'to LSC/Virgo/KAGRA members only')
    _param(what, 'Packet_Type', PACKET_TYPES[voevent_type], 'int',
           description='The Notice Type number is assigned/used within GCN')
    _param(what, 'Pkt_Ser_Num', n, 'string',
           description='A number that increments by 1 each time a new '
                       'revision is issued for this event')
    _param(what, 'GraceID', sid, 'string', ucd='meta.id',
           description='Identifier in GraceDB')
    _param(what, 'AlertType', _ALERT_TYPE[voevent_type], 'string',
           ucd='meta.version', description='VOEvent alert type')
    _param(what, 'HardwareInj', int(bool(options.get('hardware_inj'))),
           'int', ucd='meta.number',
           description='Indicates that this event is a hardware injection '
                       'if 1, no if 0')
    _param(what, 'OpenAlert', int(bool(options.get('open_alert'))), 'int',
           ucd='meta.number',
           description='Indicates that this event is an open alert if 1, '
                       'no if 0')
    _param(what, 'EventPage', event_page, 'string', ucd='meta.ref.url',
           description='Web page for evolving status of this GW candidate')
    if voevent_type != 'RE':
        _param(what, 'Instruments', event.get('instruments') or '',
               'string', ucd='meta.code',
               description='List of instruments used in analysis to '
                           'identify this event')
        if event.get('far') is not None:
            _param(what, 'FAR', repr(float(event['far'])), 'float',
                   ucd='arith.rate;stat.falsealarm', unit='Hz',
                   description='False alarm rate for GW candidates with '
                               'this strength or greater')
        _param(what, 'Group', event.get('group') or '', 'string',
               ucd='meta.code', description='Data analysis working group')
        _param(what, 'Pipeline', event.get('pipeline') or '', 'string',
               ucd='meta.code',
               description='Low-latency data analysis pipeline')
        _param(what, 'Search', event.get('search') or '', 'string',
               ucd='meta.code', description='Specific low-latency search')
        if skymap_url:
            group = etree.SubElement(
                what, 'Group', type='GW_SKYMAP',
                name=options.get('skymap_type') or 'skymap')
            _param(group, 'skymap_fits', skymap_url, 'string',
                   ucd='meta.ref.url', description='Sky Map FITS')
        classification = [(k, options[k]) for k in _CLASSIFICATION
                          if options.get(k) is not None]
        if classification:
            group = etree.SubElement(what, 'Group', type='Classification')
            etree.SubElement(group, 'Description').text = (
                'Source classification: binary neutron star (BNS), neutron '
                'star-black hole (NSBH), binary black hole (BBH), or '
                'terrestrial (noise)')
            for name, value in classification:
                _param(group, name, value, 'float', ucd='stat.probability')
        properties = [(name, options[key]) for name, key in _PROPERTIES
                      if options.get(key) is not None]
        if properties:
            group = etree.SubElement(what, 'Group', type='Properties')
            etree.SubElement(group, 'Description').text = (
                'Qualitative properties of the source, conditioned on the '
                'assumption that the signal is an astrophysical compact '
                'binary merger')
            for name, value in properties:
                _param(group, name, value, 'float', ucd='stat.probability')

    where_when = etree.SubElement(root, 'WhereWhen')
    location = etree.SubElement(where_when, 'ObsDataLocation')
    etree.SubElement(location, 'ObservatoryLocation', id='LIGO Virgo')
    observation = etree.SubElement(location, 'ObservationLocation')
    etree.SubElement(observation, 'AstroCoordSystem', id='UTC-FK5-GEO')
    coords = etree.SubElement(observation, 'AstroCoords',
                              coord_system_id='UTC-FK5-GEO')
    instant = etree.SubElement(etree.SubElement(coords, 'Time'),
                               'TimeInstant')
    etree.SubElement(instant, 'ISOTime').text = (
        gpstime.gps_to_isot(superevent['t_0']) + 'Z')

    how = etree.SubElement(root, 'How')
    etree.SubElement(how, 'Description').text = (
        'Candidate gravitational wave event identified by low-latency '
        'analysis')
    if voevent_type in ('UP', 'RE') and previous_ivorns:
        citations = etree.SubElement(root, 'Citations')
        for previous in previous_ivorns:
            etree.SubElement(
                citations, 'EventIVORN',
                cite='retraction' if voevent_type == 'RE' else 'supersedes'
            ).text = previous
        etree.SubElement(citations, 'Description').text = (
            'Determined to not be a viable GW event candidate'
            if voevent_type == 'RE' else 'Updated localization is now '
            'available')
    etree.SubElement(root, 'Description').text = (
        'Report of a candidate gravitational wave event')
    return this_ivorn, etree.tostring(root, xml_declaration=True,
                                      encoding='UTF-8', pretty_print=True)
