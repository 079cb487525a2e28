"""Reading LIGO_LW XML tables (``coinc.xml``, ``psd.xml.gz``) with
igwn-ligolw.

Only what event creation needs: the rows of the tables it asks for, as
dicts, with values converted by igwn-ligolw according to the columns'
declared LIGO_LW types (an empty value is ``None``). Table and column
names lose their ``table:`` prefixes (``coinc_inspiral:snr`` → ``snr``).

The document first passes :func:`gwcelery.util.xml.ensure_safe` (size
limit, no DTD internal subset, no entities), then igwn-ligolw's own parser
reads it. Gzip-compressed files are decompressed, within the same limit,
by :mod:`.eventfiles` before they get here.

Two departures from igwn-ligolw's defaults keep this fast and lenient
enough for what pipelines upload:

* Only the requested tables are loaded; the others (``process_params``,
  the PSD arrays of ``psd.xml.gz``, …) are skipped by the SAX content
  handler without building elements.
* Tables are generic ones, not lsctables' classes: older files declare
  ids as ``ilwd:char`` where lsctables now expects integers, and GraceDb
  stores whatever columns a pipeline sends. The column checks are those of
  igwn-ligolw, done in constant time per column (its own re-reads every
  column at each new one, which made ``sngl_inspiral``'s 64 columns cost
  more than the rest of the document).
"""
import base64
import functools
import io

from igwn_ligolw import ligolw, types

from ..util.xml import XMLError, ensure_safe

__all__ = ('read_tables',)


def _plain(value):
    """A value that JSON can hold: blobs (memoryview) as their base64
    text, complex numbers as text."""
    if isinstance(value, memoryview):
        return base64.b64encode(value).decode()
    if isinstance(value, complex):
        return str(value)
    return value


class _CachedAttributes:
    """igwn-ligolw lists an element class's attributes with ``dir()`` for
    every element it builds (a third of the reading time); once per class
    is enough."""

    @classmethod
    @functools.cache
    def validattributes(cls):
        return super().validattributes()


class _Column(_CachedAttributes, ligolw.Column):
    pass


class _Table(_CachedAttributes, ligolw.Table):
    """A LIGO_LW table of any name and columns."""

    # No lsctables class for any name (see the module's documentation).
    TableByName = {}

    class Stream(_CachedAttributes, ligolw.Table.Stream):
        def config(self, parentNode):
            # igwn-ligolw's row builder crashes the process (segmentation
            # fault) on a Stream of a Table without Columns.
            if not parentNode.columnnames:
                raise ligolw.ElementError(
                    f'table {parentNode.Name}: Stream without Columns')
            return super().config(parentNode)

        def endElement(self):
            builder, table = self._rowbuilder, self.parentNode
            tokenizer = self._tokenizer
            super().endElement()
            # igwn-ligolw drops the values of an unfinished last row, and
            # an unterminated quoted string (left in the tokenizer).
            if tokenizer.data.strip():
                raise ligolw.ElementError(
                    f'table {table.Name}: unterminated string in Stream')
            if builder.i:
                columns = len(table.columnnames)
                raise ligolw.ElementError(
                    f'table {table.Name}: {len(table) * columns + builder.i}'
                    f' values for {columns} columns')

    def _verifyChildren(self, i):
        child = self.childNodes[i]
        if child.tagName != ligolw.Column.tagName:
            return super()._verifyChildren(i)
        # Children are appended in document order, so a Stream before this
        # Column would be the child just before it.
        if i and self.childNodes[i - 1].tagName == ligolw.Stream.tagName:
            raise ligolw.ElementError(
                'Column(s) must come before Stream in Table')
        if child.Type not in types.ToPyType:
            raise ligolw.ElementError(
                f'unrecognized Type {child.Type!r} for Column '
                f'{child.Name!r} in Table {self.Name!r}')
        names = self.__dict__.setdefault('_column_names', set())
        if child.Name in names:
            raise ligolw.ElementError(
                f'duplicate Column {child.Name!r} in Table {self.Name!r}')
        names.add(child.Name)


class _ContentHandler(ligolw.PartialLIGOLWContentHandler):
    """Loads the wanted tables and notes the root element's name."""

    def __init__(self, document, names):
        super().__init__(document, self._wanted)
        self.names = names
        self.root = None

    def _wanted(self, name, attrs):
        if self.root is None:
            self.root = name
        if name != ligolw.Table.tagName or 'Name' not in attrs:
            return False
        return self.names is None or \
            ligolw.Table.TableName(attrs['Name']) in self.names

    def startTable(self, parent, attrs):
        return _Table(attrs)

    def startColumn(self, parent, attrs):
        return _Column(attrs)


def read_tables(data, max_size, names=None):
    """Tables of a LIGO_LW document.

    Parameters
    ----------
    data : bytes
        The document (not compressed).
    max_size : int
        Largest document accepted (bytes).
    names : iterable of str, optional
        Names of the tables to read (without ``:table``); all by default.

    Returns
    -------
    dict
        ``{table name: [row dict, …]}`` for the tables present.

    Raises
    ------
    XMLError
        (a :class:`ValueError`) If the document is too large, hostile, not
        LIGO_LW XML, or has a malformed table.
    """
    # The safe-XML policy, in front of igwn-ligolw's expat parser.
    ensure_safe(data, max_size)
    document = ligolw.Document()
    handler = _ContentHandler(document, names)
    try:
        ligolw.make_parser(handler).parse(io.BytesIO(data))
    except Exception as e:
        # Whatever igwn-ligolw raises on a hostile or broken document
        # (ElementError, ValueError, and for some malformed structures
        # AttributeError or IndexError) means the upload is unreadable.
        raise XMLError(f'cannot read LIGO_LW: {e}') from None
    if handler.root != ligolw.LIGO_LW.tagName:
        raise XMLError(
            f'not a LIGO_LW document (root element {handler.root!r})')
    tables = {}
    for table in document.getElementsByTagName(ligolw.Table.tagName):
        columns = table.columnnames
        tables[table.Name] = [
            {name: _plain(getattr(row, name)) for name in columns}
            for row in table]
    return tables
