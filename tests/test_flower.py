"""``gwcelery flower``: the console binds loopback and guards its API."""
import urllib.error
import urllib.request

import pytest

from gwcelery.util.waiting import free_port, wait_for

from tests.conftest import Service

pytestmark = pytest.mark.slow


def listening_addresses(port):
    """Local addresses of sockets listening on ``port`` (from /proc)."""
    found = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(':')
            if state == '0A' and int(hexport, 16) == port:  # 0A = LISTEN
                found.append(address)
    return found


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ''
    except OSError:
        return None, ''


@pytest.fixture
def flower(redis_client, start_worker, tmp_path):
    start_worker('flower-target', 'celery', '-c', '1')
    port = free_port()
    service = Service(['flower', f'--port={port}'], tmp_path / 'flower.log')
    base = f'http://127.0.0.1:{port}'
    wait_for(lambda: get(base + '/healthcheck')[0] == 200, timeout=60,
             what='Flower to answer')
    yield base, port
    service.stop()


def test_binds_loopback_only(flower):
    base, port = flower
    # 0100007F is 127.0.0.1 in /proc's byte order.
    assert listening_addresses(port) == ['0100007F']


def test_console_shows_the_worker(flower):
    base, port = flower
    status, body = get(base + '/')
    assert status == 200 and 'Flower' in body
    wait_for(lambda: 'flower-target@' in get(base + '/workers')[1],
             timeout=30, what='the worker to show in Flower')


def test_api_needs_authentication(flower):
    base, port = flower
    assert get(base + '/api/workers')[0] == 401
