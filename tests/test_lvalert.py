"""LVAlert building blocks in this process: decoding, GraceDb filter, URLs
and the transport table, credentials, the Redis Streams transport's
acknowledgements, the handler registry's contract, and ``gwcelery lvalert
publish``."""
import json
import logging
import subprocess
import sys
import threading
import time
import uuid

import pytest

from gwcelery import app
from gwcelery.lvalert import alerts, credentials, transport
from gwcelery.lvalert.transport import parse_url, redis_streams
from gwcelery.tasks import lvalert
from gwcelery.util.waiting import wait_for

from .conftest import ROOT
from .fixtures.lvalert import DATA, load_sample

API = 'https://gracedb.ligo.org/api/'


# -- decoding -----------------------------------------------------------------

def test_decode_sample():
    raw = (DATA / 'lvalert_event_creation.json').read_bytes()
    alert = alerts.decode(raw, max_bytes=1 << 20)
    assert alert['uid'] == 'M394156'
    assert alert['alert_type'] == 'new'


@pytest.mark.parametrize('payload, message', [
    (b'{"uid": "G1", ', 'not JSON'),
    ('<entry>not json</entry>', 'not JSON'),
    ('[1, 2, 3]', 'not an object'),
    ('"a string"', 'not an object'),
    (b'\xff\xfe{}', 'not UTF-8'),
    ('[' * 100000 + ']' * 100000, 'nested too deeply'),
    (None, 'no payload'),
    ('{"pad": "' + 'x' * 400000 + '"}', 'exceeds the limit'),
])
def test_decode_rejects(payload, message):
    with pytest.raises(alerts.BadAlert, match=message):
        alerts.decode(payload, max_bytes=300000)


def test_encode_refuses_non_dict_and_nan():
    with pytest.raises(TypeError):
        alerts.encode(['not', 'an', 'alert'])
    with pytest.raises(ValueError):
        alerts.encode({'far': float('nan')})


# -- which GraceDb --------------------------------------------------------------

@pytest.mark.parametrize('link, ours', [
    ('https://gracedb.ligo.org/api/superevents/S1/', True),
    ('https://GRACEDB.ligo.org:443/api/events/G1', True),
    ('https://gracedb-test.ligo.org/api/events/G1', False),
    ('http://gracedb.ligo.org/api/events/G1', False),
    ('https://gracedb.ligo.org/apix/events/G1', False),
    ('https://gracedb.ligo.org:8443/api/events/G1', False),
    ('https://gracedb.ligo.org:bad/api/', False),
])
def test_is_from_links_self(link, ours):
    assert alerts.is_from({'object': {'links': {'self': link}}}, API) is ours
    assert alerts.is_from({'object': {'self': link}}, API) is ours


def test_samples_are_from_their_gracedb():
    sample = json.loads(
        (DATA / 'igwn_alert_superevent_creation.json').read_text())
    assert not alerts.is_from(sample, API)
    assert alerts.is_from(sample, 'https://gracedb-dev1.ligo.org/api/')
    rewritten = load_sample('igwn_alert_superevent_creation.json',
                            gracedb_url=API)
    assert alerts.is_from(rewritten, API)
    # A label alert has no object: nothing says it is foreign.
    label = json.loads((DATA / 'igwn_alert_superevent_label.json').read_text())
    assert alerts.self_link(label) is None
    assert alerts.is_from(label, API)


# -- URLs and credentials -----------------------------------------------------

def test_parse_url():
    xmpp = parse_url('xmpp://alice:s3cret@lvalert.example.org')
    assert (xmpp.scheme, xmpp.host, xmpp.port) == (
        'xmpp', 'lvalert.example.org', None)
    assert (xmpp.username, xmpp.password) == ('alice', 's3cret')
    assert 's3cret' not in repr(xmpp) and 's3cret' not in xmpp.redacted
    local = parse_url('redis://127.0.0.1:6380/2')
    assert (local.scheme, local.port) == ('redis', 6380)
    assert local.redacted == 'redis://127.0.0.1:6380/2'
    with pytest.raises(ValueError, match='no host'):
        parse_url('xmpp://')
    with pytest.raises(ValueError, match='malformed port') as excinfo:
        parse_url('xmpp://u:s3cret@host:port')
    assert 's3cret' not in str(excinfo.value)


def test_transport_table():
    from gwcelery.lvalert.transport.redis_streams import RedisTransport
    from gwcelery.lvalert.transport.xmpp import XMPPTransport
    assert transport.resolve('xmpp') is XMPPTransport
    assert transport.resolve('redis') is RedisTransport
    assert transport.resolve('REDISS') is RedisTransport
    for scheme in transport.TRANSPORTS:
        cls = transport.resolve(scheme)
        assert issubclass(cls, transport.Transport)
        # Every transport implements the whole interface.
        for method in ('listen', 'create_node', 'nodes', '_publish',
                       '_close'):
            assert getattr(cls, method) is not getattr(
                transport.Transport, method), (cls, method)
    with pytest.raises(ValueError, match='xmpp://, redis://, rediss://'):
        transport.from_url('kafka://broker:9092')
    assert transport.from_url('xmpp://u:p@lvalert.example.org').address == (
        'lvalert.example.org', 5222)


def test_xmpp_credentials_of_the_url_win(tmp_path, monkeypatch):
    monkeypatch.setenv('NETRC', str(tmp_path / 'no-netrc'))
    server = parse_url('xmpp://alice:from-url@lvalert.example.org')
    lvalert_transport = transport.resolve('xmpp')(server, 'bob', 'given')
    assert (lvalert_transport.creds.username,
            lvalert_transport.creds.password) == ('alice', 'from-url')
    plain = transport.from_url('xmpp://lvalert.example.org',
                               username='bob', password='given')
    assert plain.creds.username == 'bob'
    with pytest.raises(RuntimeError, match='machine lvalert.example.org'):
        transport.from_url('xmpp://lvalert.example.org')


def test_credentials_from_netrc(tmp_path, monkeypatch):
    netrc = tmp_path / 'netrc'
    netrc.write_text('machine lvalert.example.org login bob password pw1\n')
    netrc.chmod(0o600)
    monkeypatch.setenv('NETRC', str(netrc))
    creds = credentials.lookup('lvalert.example.org')
    assert (creds.username, creds.password) == ('bob', 'pw1')
    assert 'pw1' not in repr(creds) and str(netrc) in creds.source
    # Explicit values win; an explicit other user gets no netrc password.
    assert credentials.lookup('lvalert.example.org', 'x', 'y').password == 'y'
    with pytest.raises(RuntimeError, match='No LVAlert password'):
        credentials.lookup('lvalert.example.org', username='carol')
    with pytest.raises(RuntimeError, match='machine other.example.org'):
        credentials.lookup('other.example.org')


def test_unreadable_netrc_logs_no_secret(tmp_path, monkeypatch, caplog):
    netrc = tmp_path / 'netrc'
    netrc.write_text('machine h login u password topsecret bogus\n')
    monkeypatch.setenv('NETRC', str(netrc))
    with pytest.raises(RuntimeError):
        credentials.lookup('h')
    assert 'Cannot read netrc file' in caplog.text
    assert 'topsecret' not in caplog.text


# -- the handler registry ------------------------------------------------------

CONTRACT_QUEUE = 'tests_lvalert_contract'


@pytest.fixture
def contract_registry(redis_client):
    """A registry with one handler on ``cbc_test_only``, whose tasks go to
    a queue of their own that no worker consumes: what is dispatched
    waits there, in the real broker."""
    registry = lvalert.LVAlertHandler()

    # A task name of its own for each test that uses the fixture.
    @registry('cbc_test_only', shared=False, queue=CONTRACT_QUEUE,
              name=f'tests.test_lvalert.contract_{uuid.uuid4().hex}')
    def handle(alert):
        pass

    def queued():
        return redis_client.llen(CONTRACT_QUEUE)
    return registry, queued


def test_registry_decodes_and_dispatches(contract_registry, caplog):
    registry, queued = contract_registry
    caplog.set_level(logging.INFO)
    node, args, kwargs = registry.process_args('cbc_test_only', b'{"uid": 1}')
    assert (node, args, kwargs) == ('cbc_test_only', ({'uid': 1},), {})
    assert registry.dispatch('cbc_test_only', '{"uid": "G1", '
                             '"alert_type": "new"}', item_id='7-0')
    assert registry.dispatch('cbc_test_only', {'uid': 'G2'})
    assert queued() == 2
    assert 'LVAlert item 7-0 on node cbc_test_only: new G1' in caplog.text


@pytest.mark.parametrize('payload, level, message', [
    ('not json', logging.WARNING,
     'Dropping LVAlert item 1-0 on node cbc_test_only: payload is not JSON'),
    (b'\xff{}', logging.WARNING, 'payload is not UTF-8'),
    ('[1, 2]', logging.WARNING, 'not an object'),
    ('{"pad": "' + 'x' * (2 << 20) + '"}', logging.WARNING,
     'exceeds the limit'),
    ({'uid': 'S1', 'object': {'links': {
        'self': 'https://gracedb-other.example/api/superevents/S1/'}}},
     logging.INFO, 'Ignoring LVAlert item 1-0 on node cbc_test_only: its '
     'object https://gracedb-other.example/api/superevents/S1/ is not in '
     'our GraceDb'),
    (json.dumps({'uid': 'G1', 'object': {
        'self': 'https://gracedb-other.example/api/events/G1'}}),
     logging.INFO, 'is not in our GraceDb'),
])
def test_registry_drops_bad_and_foreign_alerts(contract_registry, caplog,
                                               payload, level, message):
    """Whoever calls dispatch: the registry itself decodes and filters."""
    registry, queued = contract_registry
    caplog.set_level(logging.INFO)
    assert registry.dispatch('cbc_test_only', payload, item_id='1-0') is None
    assert queued() == 0
    records = [r for r in caplog.records if message in r.getMessage()]
    assert [r.levelno for r in records] == [level]
    assert not any(r.exc_info for r in caplog.records)


def test_registry_log_lines_quote_alerts_shortened(contract_registry,
                                                   caplog):
    registry, _ = contract_registry
    caplog.set_level(logging.INFO)
    huge = 'x' * 100000
    registry.dispatch('cbc_test_only', {'uid': huge, 'alert_type': 'new'})
    registry.dispatch('cbc_test_only', {'uid': 'S1', 'object': {
        'self': 'https://gracedb-other.example/' + huge}})
    assert 'is not in our GraceDb' in caplog.text
    assert max(len(r.getMessage()) for r in caplog.records) < 500


def test_registry_ignores_nodes_without_handlers(contract_registry, caplog):
    registry, queued = contract_registry
    assert registry.dispatch('no_such_node', {'uid': 1}) is None
    assert queued() == 0
    assert ('Ignoring LVAlert alert on node no_such_node: no handler is '
            'registered for that node') in caplog.text


def test_handlers_ignore_results_unless_asked():
    registry = lvalert.LVAlertHandler()

    @registry('cbc_test_only', shared=False,
              name='tests.test_lvalert.result_ignored')
    def ignored(alert):
        pass

    @registry('cbc_test_only', shared=False, ignore_result=False,
              name='tests.test_lvalert.result_kept')
    def kept(alert):
        pass

    assert ignored.ignore_result is True
    assert kept.ignore_result is False


# -- the Redis Streams transport ----------------------------------------------

def _run_listener(listener, nodes, callback):
    stop = threading.Event()
    thread = threading.Thread(target=listener.listen,
                              args=(nodes, callback, stop.is_set))
    thread.start()
    assert listener.ready.wait(10), 'listener not ready'
    return stop, thread


def test_redis_publisher_is_thread_safe(redis_client, redis_url):
    with transport.from_url(redis_url) as publisher:
        def publish(n):
            for i in range(50):
                publisher.publish('threads', {'thread': n, 'i': i})
        threads = [threading.Thread(target=publish, args=(n,))
                   for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert publisher.nodes() == ['threads']
    entries = redis_client.xrange(redis_streams.stream_key('threads'))
    seen = {(a['thread'], a['i']) for a in (
        json.loads(fields[b'alert']) for _, fields in entries)}
    assert seen == {(n, i) for n in range(8) for i in range(50)}
    with pytest.raises(RuntimeError, match='closed'):
        publisher.publish('threads', {})


def test_redis_listener_retries_until_dispatch_succeeds(redis_client,
                                                        redis_url):
    """An entry whose callback raised stays pending and comes back; nothing
    after it is lost."""
    calls = []

    def flaky(node, item_id, payload):
        calls.append(json.loads(payload)['n'])
        if len(calls) == 1:
            raise ConnectionError('broker away (simulated in the callback)')

    listener = transport.from_url(redis_url, block=0.1)
    stop, thread = _run_listener(listener, ['flaky'], flaky)
    try:
        with transport.from_url(redis_url) as publisher:
            for n in range(3):
                publisher.publish('flaky', {'n': n})
        wait_for(lambda: calls[-3:] == [0, 1, 2], timeout=10,
                 what='the failed entry to come back')
    finally:
        stop.set()
        thread.join(10)
    assert calls == [0, 0, 1, 2]
    assert redis_client.xpending(redis_streams.stream_key('flaky'),
                                 'gwcelery')['pending'] == 0


def test_redis_listener_resumes_pending_and_unread(redis_client, redis_url):
    """A new listener first takes the entries a dead one read without
    acknowledging, then those published while none ran."""
    key = redis_streams.stream_key('resume')
    with transport.from_url(redis_url) as publisher:
        listener = transport.from_url(redis_url, block=0.1)
        got = []
        stop, thread = _run_listener(listener, ['resume'],
                                     lambda *a: got.append(a))
        stop.set()
        thread.join(10)
        ids = [publisher.publish('resume', {'n': n}) for n in range(4)]
        # A listener that died after reading two entries: they are pending.
        redis_client.xreadgroup('gwcelery', redis_streams.CONSUMER,
                                {key: '>'}, count=2)
        assert redis_client.xpending(key, 'gwcelery')['pending'] == 2
        listener = transport.from_url(redis_url, block=0.1)
        stop, thread = _run_listener(listener, ['resume'],
                                     lambda *a: got.append(a))
        wait_for(lambda: len(got) == 4, timeout=10, what='4 entries')
        stop.set()
        thread.join(10)
    assert [item_id for _, item_id, _ in got] == ids
    assert redis_client.xpending(key, 'gwcelery')['pending'] == 0


def test_redis_stream_length_is_bounded(redis_client, redis_url):
    with transport.from_url(redis_url, maxlen=100) as publisher:
        for n in range(1000):
            publisher.publish('bounded', {'n': n})
    length = redis_client.xlen(redis_streams.stream_key('bounded'))
    assert 100 <= length < 300


def test_redis_listener_survives_unreachable_redis(caplog):
    listener = transport.from_url(
        'redis://127.0.0.1:9/0', block=0.1, max_backoff=0.2)
    stop = threading.Event()
    thread = threading.Thread(
        target=listener.listen, args=(['x'], lambda *a: None, stop.is_set))
    thread.start()
    try:
        wait_for(lambda: caplog.text.count('unreachable') >= 2, timeout=10,
                 what='two failed attempts')
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


# -- the command line -----------------------------------------------------------

def _cli(*args, env=None, input=None):
    return subprocess.run(
        [sys.executable, '-m', 'gwcelery', 'lvalert', *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, input=input)


def test_cli_publish(redis_client, redis_url, tmp_path):
    sample = DATA / 'lvalert_event_creation.json'
    result = _cli('--url', redis_url, 'publish', 'cbc_gstlal', str(sample))
    assert result.returncode == 0, result.stderr
    item_id = result.stdout.strip()
    entries = redis_client.xrange(redis_streams.stream_key('cbc_gstlal'))
    assert [e[0].decode() for e in entries] == [item_id]
    assert json.loads(entries[0][1][b'alert']) == json.loads(
        sample.read_text())
    result = _cli('--url', redis_url, 'nodes')
    assert result.stdout.split() == ['cbc_gstlal']

    bad = tmp_path / 'bad.json'
    bad.write_text('[1, 2]')
    result = _cli('--url', redis_url, 'publish', 'cbc_gstlal', str(bad))
    assert result.returncode != 0 and 'not an object' in result.stderr
    result = _cli('--url', redis_url, 'publish', '--raw', 'cbc_gstlal',
                  str(bad))
    assert result.returncode == 0, result.stderr
    result = _cli('--url', 'redis://127.0.0.1:9/0', 'publish', 'x',
                  str(sample))
    assert result.returncode != 0 and 'publishing failed' in result.stderr
    assert 'Traceback' not in result.stderr


def test_transport_from_conf_uses_lvalert_url(redis_client, redis_url):
    conf = app.conf
    old = conf.lvalert_url, conf.lvalert_stream_maxlen
    conf.lvalert_url, conf.lvalert_stream_maxlen = redis_url, 123
    try:
        with transport.from_conf(conf) as lvalert_transport:
            assert lvalert_transport.maxlen == 123
            lvalert_transport.publish('superevent', {'uid': 'S1'})
    finally:
        conf.lvalert_url, conf.lvalert_stream_maxlen = old
    assert redis_client.xlen(redis_streams.stream_key('superevent')) == 1


def test_listener_with_bad_configuration_logs_and_waits(
        monkeypatch, tmp_path, caplog):
    """No credentials: one clear error, then a pause before beat retries,
    instead of a traceback every second."""
    monkeypatch.setenv('NETRC', str(tmp_path / 'no-netrc'))
    monkeypatch.setattr(lvalert, 'CONFIG_RETRY_INTERVAL', 0.6)
    monkeypatch.setattr(lvalert.listen, 'is_aborted', lambda: False)
    conf = app.conf
    old = conf.lvalert_url
    conf.lvalert_url = 'xmpp://lvalert.example.org'
    try:
        started = time.monotonic()
        lvalert.listen.run()
        elapsed = time.monotonic() - started
    finally:
        conf.lvalert_url = old
    assert elapsed >= 0.5
    assert 'LVAlert listener cannot start: No LVAlert password' in caplog.text
    conf.lvalert_url = 'kafka://nowhere'
    try:
        lvalert.listen.run()
    finally:
        conf.lvalert_url = old
    assert 'Unsupported LVAlert URL scheme' in caplog.text
