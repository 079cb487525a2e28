"""gwcelery.util.network: which hosts are this machine's loopback."""
import socket

import pytest

from gwcelery.util.network import is_loopback


@pytest.mark.parametrize('host, expected', [
    ('127.0.0.1', True),
    ('127.1.2.3', True),
    ('::1', True),
    ('[::1]', True),
    ('localhost', True),
    ('192.0.2.1', False),
    ('0.0.0.0', False),
    ('::', False),
    ('2001:db8::1', False),
    ('', False),
    (None, False),
    ('no-such-host.invalid', False),
])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_a_name_counts_only_if_all_its_addresses_are_loopback(monkeypatch):
    """A name that also resolves to a public address is reachable from
    outside: not loopback."""
    answers = {
        'both.example': ['127.0.0.1', '192.0.2.7'],
        'only-local.example': ['127.0.0.1', '::1'],
        'nothing.example': [],
    }

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 0, '', (a, 0))
                for a in answers[host]]

    monkeypatch.setattr(socket, 'getaddrinfo', getaddrinfo)
    assert not is_loopback('both.example')
    assert is_loopback('only-local.example')
    assert not is_loopback('nothing.example')
