"""Log comments as HTML, with a short list of harmless tags.

GraceDb shows log comments as HTML, and its clients write links and tables
in them (gwcelery's sky-map annotation writes the FITS header as a table).
The pages of the local GraceDb do the same, but a comment is anyone's
text: :func:`sanitize` keeps the tags of :data:`ALLOWED` without any
attribute but a link's ``href`` (relative, ``http`` or ``https``), and
shows everything else — other tags, scripts, comments — as text.
"""
import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markupsafe import Markup

__all__ = ('ALLOWED', 'sanitize')

#: Tags kept as tags.
ALLOWED = frozenset({
    'a', 'b', 'br', 'code', 'em', 'i', 'li', 'ol', 'p', 'pre', 'strong',
    'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul'})

_VOID = frozenset({'br'})


def _safe_href(value):
    if not value or any(ord(c) < 0x20 for c in value):
        return False
    try:
        scheme = urlsplit(value.strip()).scheme
    except ValueError:
        return False
    return scheme in ('', 'http', 'https')


class _Sanitizer(HTMLParser):

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.open = []

    def _text(self, text):
        self.out.append(html.escape(text))

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED:
            self._text(self.get_starttag_text() or f'<{tag}>')
            return
        extra = ''
        if tag == 'a':
            href = dict(attrs).get('href')
            if _safe_href(href):
                extra = f' href="{html.escape(href)}"'
        self.out.append(f'<{tag}{extra}>')
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag in _VOID:
            self.out.append(f'<{tag}>')
        else:
            self._text(self.get_starttag_text() or f'<{tag}/>')

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if tag not in self.open:
            self._text(f'</{tag}>')
            return
        # Close what was left open inside it, then the tag itself.
        while self.open:
            name = self.open.pop()
            self.out.append(f'</{name}>')
            if name == tag:
                break

    def handle_data(self, data):
        self._text(data)

    def handle_comment(self, data):
        self._text(f'<!--{data}-->')

    def handle_decl(self, decl):
        self._text(f'<!{decl}>')

    def unknown_decl(self, data):
        self._text(f'<![{data}]>')

    def handle_pi(self, data):
        self._text(f'<?{data}>')

    def result(self):
        self.close()
        self.out.extend(f'</{name}>' for name in reversed(self.open))
        self.open = []
        return Markup(''.join(self.out))


def sanitize(text):
    """``text`` as safe HTML (a :class:`markupsafe.Markup`)."""
    parser = _Sanitizer()
    parser.feed(text or '')
    return parser.result()
