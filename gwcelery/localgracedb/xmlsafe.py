"""Parsing untrusted XML safely.

Uploaded event files and GCN notices come from the network. The parser
never fetches anything (no network, no external DTD), never expands
entities, and refuses documents that declare an internal DTD subset (the
vehicle of entity-expansion attacks) or that exceed a size limit.
"""
from lxml import etree

__all__ = ('parse', 'XMLError', 'MAX_XML_BYTES')

#: Largest XML document parsed, in bytes.
MAX_XML_BYTES = 32 * 1024 * 1024


class XMLError(ValueError):
    """The document is not acceptable XML; the message says why."""


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False,
    dtd_validation=False, huge_tree=False, remove_comments=True)


def parse(data):
    """Parse bytes into an :class:`lxml.etree._Element` root.

    Raises
    ------
    XMLError
        Too large, not well-formed, or declaring entities.
    """
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_XML_BYTES:
        raise XMLError(f'XML document larger than {MAX_XML_BYTES} bytes')
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as e:
        raise XMLError(f'malformed XML: {e}') from None
    dtd = root.getroottree().docinfo.internalDTD
    # A bare <!DOCTYPE LIGO_LW SYSTEM "…"> is fine; entity declarations are
    # not (their expansion is the billion-laughs attack).
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise XMLError('XML that declares entities is not accepted')
    return root
