"""Reading XML from outside, under one safety policy.

Every document that gwcelery reads from the network goes through this
module: GCN notices and the other packets of the VOEvent Transport Protocol
(:mod:`gwcelery.vtp`), event files uploaded to the local GraceDb
(:mod:`gwcelery.localgracedb`). A document is checked and parsed with
:func:`parse`, or only checked with :func:`ensure_safe` by a caller that
hands the bytes to another parser afterwards.

Accepted
    A well-formed XML 1.0 document of at most ``max_size`` bytes (the
    caller's limit; a :class:`str` is counted, and parsed, as its UTF-8
    encoding), in UTF-8, UTF-16, ISO-8859-1, US-ASCII or another
    single-byte encoding, with or without a document type declaration that
    has **no internal subset**, such as the
    ``<!DOCTYPE LIGO_LW SYSTEM "http://ldas-sw.ligo.caltech.edu/doc/ligolwAPI/html/ligolw_dtd.txt">``
    that LIGO_LW files from pipelines carry. The external DTD that such a
    declaration names is never loaded, so it defines nothing, validates
    nothing and adds no default attributes.

Refused, with :class:`XMLError`
    * an empty document, or one longer than ``max_size`` (checked before
      anything is parsed);
    * a document type declaration with an internal subset,
      ``<!DOCTYPE name [ ... ]>``, whatever the subset holds, even nothing:
      it is where entity declarations (the "billion laughs" expansion
      bomb), external entities (XXE: a ``file://`` or ``http://`` system
      identifier), parameter entities and attribute defaults live. It is
      refused where the subset starts, before any of it is read;
    * a reference to an entity other than the five predefined ones
      (``&amp;``, ``&lt;``, ``&gt;``, ``&quot;``, ``&apos;``) and character
      references: no entity is ever expanded;
    * whatever libxml2 refuses with its default limits (``huge_tree`` off):
      a document that is not well-formed, elements nested more than 256
      deep, a text node over 10 MB, a name over 50 000 characters;
    * a multi-byte encoding other than UTF-8 and UTF-16 (Shift_JIS,
      EUC-JP, …), which the prolog check below cannot read.

Nothing is ever read from the network or the file system while parsing:
no DTD, no external entity, no XInclude.

How: a first pass with expat reads only the prolog, up to the start of the
root element, and stops at a document type declaration with an internal
subset (expat says whether one follows before reading it; libxml2 keeps no
trace of an empty or comment-only subset, so it cannot be checked after
parsing). Then lxml parses the document with entity substitution, DTD
loading and network access off, and the document is refused if libxml2
warned of an undeclared entity (which a bare document type declaration
makes well-formed: libxml2 keeps it unexpanded, or drops it from an
attribute value).
"""
from xml.parsers import expat

from lxml import etree

__all__ = ('XMLError', 'parse', 'ensure_safe', 'voevent_ivorn')

#: Root tags of VOEvents, versions 1.1 and 2.0.
_VOEVENT_TAGS = frozenset((
    '{http://www.ivoa.net/xml/VOEvent/v1.1}VOEvent',
    '{http://www.ivoa.net/xml/VOEvent/v2.0}VOEvent'))


class XMLError(ValueError):
    """A document refused by the policy of :mod:`gwcelery.util.xml`, or not
    what the caller needs (e.g. not a VOEvent); the message says why."""


class _RootReached(Exception):
    """The prolog check has seen all it needs."""


def _check_prolog(data):
    """Refuse an internal DTD subset; return expat's complaint about the
    prolog (``None`` if it has none)."""
    scanner = expat.ParserCreate()

    def doctype(name, system_id, public_id, has_internal_subset):
        if has_internal_subset:
            raise XMLError(
                f'XML with an internal DTD subset (<!DOCTYPE {name} [...]>) '
                'is refused: entity and other declarations are not accepted')

    def start(name, attributes):
        raise _RootReached

    scanner.StartDoctypeDeclHandler = doctype
    scanner.StartElementHandler = start
    try:
        scanner.Parse(data, True)
    except _RootReached:
        return None
    except XMLError:
        raise
    except expat.ExpatError as e:
        return str(e)
    except ValueError as e:
        # pyexpat's answer to a multi-byte encoding it does not know.
        return str(e)
    return 'no root element'


def _bytes(data, max_size):
    if isinstance(data, str):
        data = data.encode('utf-8')
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f'expected bytes or str, not {type(data).__name__}')
    if not data:
        raise XMLError('empty XML document')
    if len(data) > max_size:
        raise XMLError(f'XML document of {len(data)} bytes is over the limit '
                       f'of {max_size} bytes')
    return data


def parse(data, max_size):
    """Check and parse an XML document from outside.

    Parameters
    ----------
    data : bytes or str
        The document (``bytearray`` and ``memoryview`` too).
    max_size : int
        Largest accepted length in bytes.

    Returns
    -------
    lxml.etree._Element
        The root element.

    Raises
    ------
    XMLError
        If the policy of this module refuses the document.
    TypeError
        If ``data`` is neither bytes nor str.
    """
    data = _bytes(data, max_size)
    prolog_error = _check_prolog(data)
    # A parser per call: lxml parsers must not be shared between threads
    # (the local GraceDb serves requests from several).
    parser = etree.XMLParser(
        resolve_entities=False, load_dtd=False, dtd_validation=False,
        attribute_defaults=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise XMLError(f'malformed XML: {e}') from None
    if prolog_error is not None:
        # libxml2 read a prolog that expat could not check.
        raise XMLError(f'XML refused, its prolog cannot be checked: '
                       f'{prolog_error}')
    # Only with a document type declaration is a reference to an undeclared
    # entity well-formed (the external DTD, which is not read, might declare
    # it); libxml2 then keeps it unexpanded in text and drops it from
    # attribute values, and warns.
    for entry in parser.error_log:
        if entry.type == etree.ErrorTypes.WAR_UNDECLARED_ENTITY:
            raise XMLError(f'XML refers to an entity that it does not '
                           f'declare ({entry.message}, line {entry.line}); '
                           'entities are not expanded')
    return root


def ensure_safe(data, max_size):
    """Apply the checks of :func:`parse` without keeping the tree.

    For a caller that gives the document to another parser afterwards (a
    LIGO_LW reader, say): once this returns, that parser has no entity to
    expand, no internal subset to read and nothing to fetch but the
    external DTD of a bare document type declaration, which it must not
    load.

    Parameters
    ----------
    data : bytes or str
    max_size : int
        Largest accepted length in bytes.

    Raises
    ------
    XMLError
        If :func:`parse` would refuse the document.
    """
    parse(data, max_size)


def voevent_ivorn(root):
    """The IVORN of a VOEvent.

    Parameters
    ----------
    root : lxml.etree._Element
        A parsed document's root element.

    Returns
    -------
    str
        Its ``ivorn`` attribute.

    Raises
    ------
    XMLError
        If the root is not a VOEvent (1.1 or 2.0) or has no ivorn.
    """
    if root.tag not in _VOEVENT_TAGS:
        raise XMLError(f'not a VOEvent (root element {root.tag})')
    ivorn = root.get('ivorn')
    if not ivorn or not ivorn.strip():
        raise XMLError('VOEvent has no ivorn')
    return ivorn
