"""Network address helpers."""
import ipaddress
import socket

__all__ = ('is_loopback',)


def is_loopback(host):
    """Whether host is this machine's loopback interface and nothing else.

    An IP address is judged as it is; a host name is resolved, and counts
    only if every address it resolves to is a loopback address (a name that
    also resolves to a public address could be reached from outside). A
    name that does not resolve, and an empty or missing host, are not
    loopback.

    Examples
    --------
    >>> is_loopback('127.0.0.1'), is_loopback('::1'), is_loopback('[::1]')
    (True, True, True)
    >>> is_loopback('192.0.2.1'), is_loopback(''), is_loopback(None)
    (False, False, False)
    """
    if not host:
        return False
    literal = host.strip('[]').split('%')[0]  # IPv6 brackets, zone index
    try:
        return ipaddress.ip_address(literal).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split('%')[0]).is_loopback
        for info in infos)
