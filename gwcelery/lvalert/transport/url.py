"""LVAlert server URLs: ``SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/PATH]``.

The scheme names the transport (see :mod:`gwcelery.lvalert.transport`);
this module only splits the URL and keeps its password out of
:func:`repr` and of :attr:`ServerURL.redacted`, the form fit for logs.
"""
import dataclasses
from urllib.parse import unquote, urlsplit

__all__ = ('ServerURL', 'parse_url')


@dataclasses.dataclass(frozen=True)
class ServerURL:
    """A parsed LVAlert server URL."""

    url: str = dataclasses.field(repr=False)
    """The URL as given (it may hold a password; do not log it)."""

    scheme: str
    """In lower case."""

    host: str
    port: int | None = None
    """``None`` when the URL names none: the transport's default applies."""

    path: str = ''
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def redacted(self):
        """The URL without user name and password, fit for logs."""
        port = f':{self.port}' if self.port else ''
        return f'{self.scheme}://{self.host}{port}{self.path}'


def parse_url(url):
    """Split an LVAlert server URL.

    Raises
    ------
    ValueError
        If the URL has no scheme or no host, or a malformed port. The
        message never quotes the URL, which may hold a password.

    Examples
    --------
    >>> server = parse_url('xmpp://alice:s3cret@lvalert.example.org')
    >>> server.scheme, server.host, server.port, server.username
    ('xmpp', 'lvalert.example.org', None, 'alice')
    >>> parse_url('redis://127.0.0.1:6379/0').redacted
    'redis://127.0.0.1:6379/0'
    """
    parts = urlsplit(url)
    if not parts.scheme:
        raise ValueError('The LVAlert URL names no scheme (xmpp://, '
                         'redis://, …)')
    if not parts.hostname:
        raise ValueError('The LVAlert URL names no host')
    try:
        port = parts.port
    except ValueError:
        raise ValueError('The LVAlert URL has a malformed port') from None
    return ServerURL(
        url=url, scheme=parts.scheme.lower(), host=parts.hostname,
        port=port, path=parts.path,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None)
