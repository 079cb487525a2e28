"""Reading LIGO_LW XML tables (``coinc.xml``) without external libraries.

Only what event creation needs: the tables' columns and rows as dicts, with
numbers converted by their declared LIGO_LW types. Table and column names
lose their ``table:`` prefixes (``coinc_inspiral:snr`` → ``snr``).
"""
import gzip
import re

from ..util.xml import XMLError, parse

__all__ = ('read_tables',)

_INT_TYPES = {'int_2s', 'int_2u', 'int_4s', 'int_4u', 'int_8s', 'int_8u',
              'int', 'integer'}
_FLOAT_TYPES = {'real_4', 'real_8', 'float', 'double'}

# One token of a stream: a quoted string (with backslash escapes), or an
# unquoted run up to the delimiter.
_TOKEN = r'\s*(?:"((?:[^"\\]|\\.)*)"|([^{d}"]*?))\s*(?:{d}|$)'


def _short(name):
    name = name.split(':')[-2] if name.endswith(':table') else name
    return name.rsplit(':', 1)[-1]


def _convert(value, quoted, type_):
    if quoted:
        return re.sub(r'\\(.)', r'\1', value)
    if value == '':
        return None
    if type_ in _INT_TYPES:
        return int(value)
    if type_ in _FLOAT_TYPES:
        return float(value)
    return value


def _tokens(text, delimiter):
    pattern = re.compile(_TOKEN.format(d=re.escape(delimiter)), re.S)
    text = text.strip()
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if not match or match.end() == pos:
            raise XMLError(f'cannot read LIGO_LW stream at offset {pos}')
        quoted, plain = match.groups()
        yield (quoted, True) if quoted is not None else (plain, False)
        pos = match.end()


def read_tables(data, max_size):
    """Tables of a LIGO_LW document.

    Parameters
    ----------
    data : bytes
        The document, plain or gzip-compressed.
    max_size : int
        Largest document accepted (bytes, uncompressed).

    Returns
    -------
    dict
        ``{table name: [row dict, …]}``.

    Raises
    ------
    ValueError
        If the document is not LIGO_LW XML or a stream is malformed.
    """
    if data[:2] == b'\x1f\x8b':
        try:
            data = gzip.decompress(data)
        except OSError as e:
            raise XMLError(f'bad gzip data: {e}') from None
    root = parse(data, max_size)
    if root.tag != 'LIGO_LW':
        raise XMLError(f'not a LIGO_LW document (root element {root.tag!r})')
    tables = {}
    for table in root.iter('Table'):
        columns = [(_short(c.get('Name', '')), c.get('Type', ''))
                   for c in table.findall('Column')]
        stream = table.find('Stream')
        rows = []
        if columns and stream is not None and stream.text:
            delimiter = stream.get('Delimiter', ',')
            values = list(_tokens(stream.text, delimiter))
            # A trailing delimiter after the last row leaves one empty token.
            if len(values) % len(columns) == 1 and values[-1] == ('', False):
                values.pop()
            if len(values) % len(columns):
                raise XMLError(
                    f'table {table.get("Name")}: {len(values)} values for '
                    f'{len(columns)} columns')
            for i in range(0, len(values), len(columns)):
                rows.append({
                    name: _convert(value, quoted, type_)
                    for (name, type_), (value, quoted)
                    in zip(columns, values[i:i + len(columns)])})
        tables[_short(table.get('Name', ''))] = rows
    return tables
