"""Safe parsing of VOEvent Transport Protocol packets, and Transport messages.

Every packet comes from the network, so it is parsed with an lxml parser that
expands no entities, loads nothing from the network, keeps libxml2's limits
on tree depth and text size (``huge_tree=False``), and rejects documents
larger than a size limit before parsing. A document that declares a DTD is
rejected outright: VOEvents never carry one, and a DTD is where entity bombs
and external entities live.

Errors are :class:`lxml.etree.XMLSyntaxError` (or its subclass
:class:`UnsafeXMLError`), the exception pygcn's client already handles.
"""
import datetime

from lxml import etree

__all__ = ('MAX_PACKET_SIZE', 'UnsafeXMLError', 'parse', 'is_voevent',
           'get_ivorn', 'get_notice_type', 'transport_role', 'transport')

MAX_PACKET_SIZE = 1 << 20
"""Default limit on a packet's size (bytes). GCN notices are a few kB."""

TRANSPORT_NAMESPACE = 'http://telescope-networks.org/schema/Transport/v1.1'

#: Root tags of Transport messages: the schema namespace and two variants
#: that brokers have used in the wild.
TRANSPORT_TAGS = frozenset(
    '{%s}Transport' % ns for ns in (
        TRANSPORT_NAMESPACE,
        'http://telescope-networks.org/xml/Transport/v1.1',
        'http://www.telescope-networks.org/xml/Transport/v1.1'))

#: Root tags of VOEvents (versions 1.1 and 2.0).
VOEVENT_TAGS = frozenset((
    '{http://www.ivoa.net/xml/VOEvent/v1.1}VOEvent',
    '{http://www.ivoa.net/xml/VOEvent/v2.0}VOEvent'))


class UnsafeXMLError(etree.XMLSyntaxError):
    """A document refused before or after parsing: too large, or with a DTD."""

    def __init__(self, message):
        super().__init__(message, 0, 0, 0, None)
        self.reason = message

    def __str__(self):
        return self.reason


def parse(payload, max_size=MAX_PACKET_SIZE):
    """Parse an untrusted XML document.

    Parameters
    ----------
    payload : bytes
        The document.
    max_size : int
        Largest accepted size in bytes.

    Returns
    -------
    lxml.etree._Element
        The root element.

    Raises
    ------
    UnsafeXMLError
        If the document is too large or declares a DTD.
    lxml.etree.XMLSyntaxError
        If it is not well-formed XML.
    TypeError
        If ``payload`` is not bytes.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f'expected bytes, not {type(payload).__name__}')
    if len(payload) > max_size:
        raise UnsafeXMLError(
            f'document of {len(payload)} bytes exceeds the limit of '
            f'{max_size} bytes')
    # A parser per call: lxml parsers must not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False,
        load_dtd=False, dtd_validation=False)
    root = etree.fromstring(bytes(payload), parser)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXMLError(
            'document declares a DTD (<!DOCTYPE ...>); VOEvents never do, '
            'and entity bombs hide there')
    return root


def is_voevent(root):
    """Whether a parsed document is a VOEvent."""
    return root.tag in VOEVENT_TAGS


def get_ivorn(root):
    """The ``ivorn`` of a VOEvent, or ``None``."""
    return root.get('ivorn')


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
