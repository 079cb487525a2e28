"""User name and password for an LVAlert server.

Credentials are taken, in this order, from explicit arguments, from the
configuration (:data:`~gwcelery.conf.lvalert_username`,
:data:`~gwcelery.conf.lvalert_password`) and from the netrc file
(``$NETRC``, else ``~/.netrc``), whose ``machine`` entry is the server's
host name. They are never written to a log: only the user name and where
the password came from are.
"""
import logging
import netrc
import os

__all__ = ('Credentials', 'lookup')

log = logging.getLogger(__name__)


class Credentials:
    """A user name and password whose :func:`repr` hides the password."""

    __slots__ = ('username', 'password', 'source')

    def __init__(self, username, password, source):
        self.username = username
        self.password = password
        self.source = source

    def __repr__(self):
        return (f'Credentials(username={self.username!r}, password=***, '
                f'source={self.source!r})')

    __str__ = __repr__


def _netrc_entry(host):
    path = os.environ.get('NETRC') or os.path.expanduser('~/.netrc')
    try:
        entry = netrc.netrc(path).authenticators(host)
    except FileNotFoundError:
        return None, path
    except (OSError, netrc.NetrcParseError) as e:
        # NetrcParseError's message can quote the line, so only its place
        # in the file is logged.
        where = getattr(e, 'lineno', None)
        log.warning('Cannot read netrc file %s (line %s): %s', path, where,
                    type(e).__name__)
        return None, path
    return entry, path


def lookup(host, username=None, password=None):
    """Find the credentials for host.

    Parameters
    ----------
    host : str
        The server's host name, the netrc ``machine``.
    username, password : str, optional
        Explicit values; a missing password is looked up in netrc when the
        netrc entry has the same user name (or no user name is given).

    Returns
    -------
    Credentials

    Raises
    ------
    RuntimeError
        If no password can be found.
    """
    if username is not None and password is not None:
        return Credentials(username, password, 'configuration')
    entry, path = _netrc_entry(host)
    if entry is not None:
        login, _, secret = entry
        if username is None or username == login:
            return Credentials(login, secret, f'netrc file {path}')
    who = f'user {username!r}' if username else 'any user'
    raise RuntimeError(
        f'No LVAlert password for {who} on {host}: set lvalert_username and '
        f'lvalert_password, or add "machine {host} login USER password '
        f'PASSWORD" to {path}')
