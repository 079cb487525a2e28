"""Reading VOEvent Transport Protocol packets, and building Transport
messages.

Every packet comes from the network: :func:`parse_packet` reads it with
:func:`gwcelery.util.xml.parse` (no DTD subset, no entities, no network,
libxml2's limits, a size limit; see :mod:`gwcelery.util.xml`) and accepts
only the two kinds of VTP document, a Transport message or a VOEvent with
an IVORN. It raises :class:`gwcelery.util.xml.XMLError`, a
:class:`ValueError`.
"""
import datetime

from lxml import etree

from ..util import xml

__all__ = ('MAX_PACKET_SIZE', 'parse_packet', 'get_notice_type',
           'transport_role', 'transport')

MAX_PACKET_SIZE = 1 << 20
"""Default limit on a packet's size (bytes). GCN notices are a few kB."""

TRANSPORT_NAMESPACE = 'http://telescope-networks.org/schema/Transport/v1.1'

#: Root tags of Transport messages, in the schema namespace and two variants
#: that brokers have used in the wild.
TRANSPORT_TAGS = frozenset(
    '{%s}Transport' % ns for ns in (
        TRANSPORT_NAMESPACE,
        'http://telescope-networks.org/xml/Transport/v1.1',
        'http://www.telescope-networks.org/xml/Transport/v1.1'))


def parse_packet(payload, max_size=MAX_PACKET_SIZE):
    """Parse a VTP packet: a Transport message or a VOEvent.

    Parameters
    ----------
    payload : bytes
        The packet, without its length prefix.
    max_size : int
        Largest accepted size in bytes.

    Returns
    -------
    lxml.etree._Element
        The root element: a Transport message (see :func:`transport_role`)
        or a VOEvent with an IVORN.

    Raises
    ------
    gwcelery.util.xml.XMLError
        If :func:`gwcelery.util.xml.parse` refuses the document, or it is
        neither a Transport message nor a VOEvent with an IVORN.
    """
    root = xml.parse(payload, max_size)
    if root.tag not in TRANSPORT_TAGS:
        try:
            xml.voevent_ivorn(root)
        except xml.XMLError as e:
            raise xml.XMLError('neither a Transport message nor a VOEvent '
                               f'with an ivorn: {e}') from None
    return root


def get_notice_type(root):
    """The GCN notice type of a VOEvent (its ``Packet_Type`` parameter).

    Raises
    ------
    ValueError
        If the VOEvent has no integer ``Packet_Type``.
    """
    # The same parameter that pygcn's gcn.handlers.get_notice_type reads.
    param = root.find("./What/Param[@name='Packet_Type']")
    if param is None:
        raise ValueError('VOEvent has no Packet_Type parameter')
    try:
        return int(param.get('value'))
    except (TypeError, ValueError):
        raise ValueError(
            f'Packet_Type {param.get("value")!r} is not an integer') from None


def transport_role(root):
    """The role of a Transport message (``'ack'``, ``'iamalive'``, …), or
    ``None`` if the document is not one."""
    if root.tag not in TRANSPORT_TAGS:
        return None
    return root.get('role', '')


def transport(role, origin, response=None, meta=None):
    """Build a Transport message.

    Parameters
    ----------
    role : str
        ``'iamalive'``, ``'ack'`` or ``'nak'``.
    origin : str
        IVORN of the sender of the message being answered (for ``iamalive``
        sent by a broker, the broker's own IVORN).
    response : str, optional
        IVORN of the party that answers.
    meta : str, optional
        Free text in ``<Meta><Result>``, e.g. why a packet was refused.

    Returns
    -------
    bytes
        The XML document, UTF-8.
    """
    ns = TRANSPORT_NAMESPACE
    root = etree.Element(f'{{{ns}}}Transport', nsmap={'trn': ns},
                         role=role, version='1.0')
    etree.SubElement(root, 'Origin').text = origin
    if response is not None:
        etree.SubElement(root, 'Response').text = response
    etree.SubElement(root, 'TimeStamp').text = (
        datetime.datetime.now(datetime.timezone.utc).isoformat())
    if meta is not None:
        etree.SubElement(etree.SubElement(root, 'Meta'), 'Result').text = meta
    return etree.tostring(root, xml_declaration=True, encoding='UTF-8')
