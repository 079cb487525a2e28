"""LVAlert transports, chosen by the scheme of the server URL.

:data:`TRANSPORTS` maps each URL scheme to the class that implements it, by
``'module:Class'`` path, so that a deployment on one transport never
imports the other's client library. Every class is a
:class:`~.base.Transport` with the same interface::

    from gwcelery.lvalert import transport

    with transport.from_url('redis://127.0.0.1:6379/0') as lvalert:
        lvalert.publish('cbc_gstlal', {'uid': 'G1', 'alert_type': 'new'})
        lvalert.nodes()                      # ['cbc_gstlal']
        lvalert.listen(['cbc_gstlal'], callback, should_stop)

``xmpp``
    XMPP publish-subscribe, as the production LVAlert servers run it
    (:mod:`.xmpp`).
``redis``, ``rediss``
    Redis Streams on the deployment's own Redis, the embedded transport
    (:mod:`.redis_streams`).

Adding a transport is a module with a :class:`~.base.Transport` subclass,
whose docstring states what it guarantees, and a line in
:data:`TRANSPORTS`.
"""
import importlib

from .base import Transport
from .url import ServerURL, parse_url

__all__ = ('TRANSPORTS', 'Transport', 'ServerURL', 'parse_url', 'resolve',
           'from_url', 'from_conf')

TRANSPORTS = {
    'xmpp': 'gwcelery.lvalert.transport.xmpp:XMPPTransport',
    'redis': 'gwcelery.lvalert.transport.redis_streams:RedisTransport',
    'rediss': 'gwcelery.lvalert.transport.redis_streams:RedisTransport',
}
"""URL scheme → ``'module:Class'`` of its transport."""


def resolve(scheme):
    """The transport class of a URL scheme.

    Raises
    ------
    ValueError
        If no transport has that scheme; the message lists those that do.
    """
    try:
        path = TRANSPORTS[scheme.lower()]
    except KeyError:
        raise ValueError(
            f'Unsupported LVAlert URL scheme {scheme!r}: use one of '
            + ', '.join(f'{s}://' for s in TRANSPORTS)) from None
    module, _, name = path.partition(':')
    return getattr(importlib.import_module(module), name)


def from_url(url, **options):
    """The transport to the server at url.

    Parameters
    ----------
    url : str
        ``xmpp://[USER[:PASSWORD]@]HOST[:PORT]`` or
        ``redis://HOST[:PORT][/DB]``.
    **options
        Keyword arguments of the transport's class.

    Returns
    -------
    ~gwcelery.lvalert.transport.base.Transport
    """
    server = parse_url(url)
    return resolve(server.scheme)(server, **options)


def from_conf(conf, url=None, **options):
    """The transport to :data:`~gwcelery.conf.lvalert_url` (or to url),
    with the credentials and limits of the configuration conf.

    Returns
    -------
    ~gwcelery.lvalert.transport.base.Transport
    """
    server = parse_url(url or conf.lvalert_url)
    return resolve(server.scheme).from_conf(conf, server, **options)
