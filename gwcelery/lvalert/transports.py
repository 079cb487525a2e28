"""The LVAlert server URL and the transport it selects.

``xmpp://[USER[:PASSWORD]@]HOST[:PORT]`` selects XMPP publish-subscribe
(:mod:`.xmpp`), ``redis://HOST[:PORT][/DB]`` (or ``rediss://``) the Redis
Streams transport (:mod:`.redis_streams`). Anything else is refused with a
:exc:`ValueError` that names the accepted schemes.
"""
import dataclasses
from urllib.parse import unquote, urlsplit

__all__ = ('ServerURL', 'parse_url', 'open_listener')

XMPP_SCHEMES = ('xmpp',)
REDIS_SCHEMES = ('redis', 'rediss')

#: Client-to-server port of XMPP when the URL names none.
XMPP_DEFAULT_PORT = 5222


@dataclasses.dataclass(frozen=True)
class ServerURL:
    """A parsed LVAlert server URL."""

    url: str = dataclasses.field(repr=False)
    """The URL as given (it may hold a password: do not log it)."""

    scheme: str
    host: str
    port: int | None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def transport(self):
        """``'xmpp'`` or ``'redis'``."""
        return 'xmpp' if self.scheme in XMPP_SCHEMES else 'redis'

    @property
    def redacted(self):
        """The URL without user name and password, fit for logs."""
        port = f':{self.port}' if self.port else ''
        rest = urlsplit(self.url).path if self.transport == 'redis' else ''
        return f'{self.scheme}://{self.host}{port}{rest}'


def parse_url(url):
    """Parse an LVAlert server URL.

    Examples
    --------
    >>> parse_url('xmpp://lvalert.cgca.uwm.edu').port
    5222
    >>> parse_url('redis://127.0.0.1:6379/0').transport
    'redis'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in XMPP_SCHEMES + REDIS_SCHEMES:
        raise ValueError(
            f'Unsupported LVAlert URL scheme {parts.scheme!r}: use '
            'xmpp://HOST[:PORT] or redis://HOST[:PORT]/DB')
    if not parts.hostname:
        raise ValueError('The LVAlert URL names no host')
    port = parts.port
    if port is None and scheme in XMPP_SCHEMES:
        port = XMPP_DEFAULT_PORT
    return ServerURL(
        url=url, scheme=scheme, host=parts.hostname, port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None)


def open_listener(conf, **options):
    """The listener for the configured server.

    Parameters
    ----------
    conf : celery.app.utils.Settings
        The application's configuration.
    **options
        Passed to the listener's constructor.

    Returns
    -------
    .redis_streams.RedisListener or .xmpp.XMPPListener
        An object with ``run(nodes, callback, should_stop)`` and ``close()``.
    """
    server = parse_url(conf.lvalert_url)
    if server.transport == 'redis':
        from .redis_streams import RedisListener
        return RedisListener(server.url, **options)
    from .xmpp import XMPPListener
    return XMPPListener.from_conf(conf, server, **options)
