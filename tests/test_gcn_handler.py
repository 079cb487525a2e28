"""The GCN handler registry: keys, decoding and failure handling."""
import json
import logging
import os
import subprocess
import sys

import pytest
import redis
from gcn import NoticeType
from lxml import etree

from gwcelery.deployment import find_redis_server
from gwcelery.tasks import gcn
from gwcelery.util.waiting import free_port, wait_for
from gwcelery.vtp.parsing import parse_packet

from .conftest import require_program
from .fixtures.gcn import DATA, SAMPLES, voevent


@pytest.mark.parametrize('name', sorted(SAMPLES))
def test_samples_are_keyed_by_notice_type(gcn_samples, name):
    key, args, kwargs = gcn.handler.process_args(gcn_samples[name])
    assert key is SAMPLES[name][0]
    assert args == (gcn_samples[name],)
    assert kwargs == {}


def test_registered_handlers_by_type():
    # The recording handlers of tests/fixtures/gcn.py.
    names = {key: [task.name for task in tasks]
             for key, tasks in gcn.handler.items()}
    assert 'tests.fixtures.gcn.record_fermi' in names[
        NoticeType.FERMI_GBM_FIN_POS]
    assert 'tests.fixtures.gcn.record_fermi' in names[
        NoticeType.FERMI_GBM_SUBTHRESH]
    assert 'tests.fixtures.gcn.record_snews' in names[NoticeType.SNEWS]


def test_unknown_type_is_kept_as_int_and_logged(caplog):
    key, _, _ = gcn.handler.process_args(voevent('ivo://x', notice_type=9999))
    assert key == 9999 and not isinstance(key, NoticeType)
    assert 'has type 9999, which is not a known GCN notice type' in caplog.text


def test_text_payload_is_encoded():
    key, args, _ = gcn.handler.process_args(voevent('ivo://x').decode())
    assert key is NoticeType.FERMI_GBM_GND_POS
    assert isinstance(args[0], bytes)


# Hostile and malformed XML: tests/test_xml_safety.py.
@pytest.mark.parametrize('payload, message', [
    (b'<a/>', 'not a VOEvent'),
    (voevent('ivo://x').replace(b'Packet_Type', b'Other'), 'no Packet_Type'),
])
def test_undecodable_payloads_are_logged_and_dropped(caplog, payload,
                                                     message):
    caplog.set_level(logging.INFO)
    assert gcn.handler.dispatch(payload) is None
    assert 'Dropping a payload that could not be decoded' in caplog.text
    assert message in caplog.text


def test_unhandled_type_is_ignored(caplog):
    caplog.set_level(logging.INFO)
    assert gcn.handler.dispatch(
        voevent('ivo://x', NoticeType.MAXI_UNKNOWN)) is None
    assert 'no handler registered' in caplog.text


_DISPATCH_SCRIPT = (
    'import logging, sys\n'
    'logging.basicConfig(level=logging.INFO)\n'
    'from gwcelery.tasks import gcn\n'
    'import tests.fixtures.gcn  # the recording handlers\n'
    'from gwcelery.vtp.parsing import parse_packet\n'
    'gcn.DISPATCH_RETRY_TIMEOUT = float(sys.argv[2])\n'
    '# Give up on each attempt to reach the broker and backend quickly.\n'
    'gcn.app.conf.result_backend_transport_options = {\n'
    '    "retry_policy": {"max_retries": 1, "interval_start": 0}}\n'
    'gcn.app.conf.task_publish_retry_policy = {\n'
    '    "max_retries": 1, "interval_start": 0}\n'
    'payload = open(sys.argv[1], "rb").read()\n'
    'gcn._dispatch(payload, parse_packet(payload))\n')


def _dispatch_process(url, retry_timeout, log_path):
    """The listener's dispatcher in a process of its own, with a broker
    at url."""
    return subprocess.Popen(
        [sys.executable, '-c', _DISPATCH_SCRIPT, str(DATA / 'snews_gcn.xml'),
         str(retry_timeout)],
        stdout=open(log_path, 'w'), stderr=subprocess.STDOUT,
        env={**os.environ, 'CELERY_BROKER_URL': url,
             'CELERY_RESULT_BACKEND': url})


def test_lost_broker_is_retried_then_logged(tmp_path):
    url = f'redis://127.0.0.1:{free_port()}/0'  # nothing listens there
    proc = _dispatch_process(url, 3, tmp_path / 'dispatch.log')
    assert proc.wait(120) == 0
    log = (tmp_path / 'dispatch.log').read_text()
    assert 'Could not dispatch GCN notice ivo://nasa.gsfc.gcn/SNEWS' in log
    assert 'retrying in 0.5 s' in log
    assert 'Lost GCN notice ivo://nasa.gsfc.gcn/SNEWS#Event2018-09-18' in log


def test_broker_back_within_the_retry_window_loses_nothing(tmp_path):
    binary = require_program(find_redis_server(), 'redis-server')
    port = free_port()
    url = f'redis://127.0.0.1:{port}/0'
    log_path = tmp_path / 'dispatch.log'
    proc = _dispatch_process(url, 60, log_path)
    server = None
    try:
        wait_for(lambda: 'Could not dispatch' in log_path.read_text(),
                 timeout=60, what='a failed attempt')
        server = subprocess.Popen(
            [binary, '--port', str(port), '--bind', '127.0.0.1', '--save',
             '', '--appendonly', 'no', '--dir', str(tmp_path)],
            stdout=subprocess.DEVNULL)
        assert proc.wait(60) == 0
        client = redis.Redis.from_url(url)
        # The SNEWS recording handler's task message is in its queue.
        (message,) = client.lrange('celery', 0, -1)
        assert json.loads(message)['headers']['task'] == \
            'tests.fixtures.gcn.record_snews'
        client.close()
        assert 'Lost' not in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        if server is not None:
            server.terminate()
            server.wait()


def test_a_parsed_root_is_used_as_given():
    """The listener passes pygcn's parse along: the key comes from that
    tree, not from parsing the bytes again."""
    fermi = voevent('ivo://x', NoticeType.FERMI_GBM_GND_POS)
    swift = voevent('ivo://y', NoticeType.SWIFT_BAT_GRB_POS_ACK)
    assert gcn.handler.process_args(fermi) == (
        NoticeType.FERMI_GBM_GND_POS, (fermi,), {})
    # A root of another notice shows which one the registry read.
    assert gcn.handler.process_args(fermi, root=parse_packet(swift))[0] == \
        NoticeType.SWIFT_BAT_GRB_POS_ACK


def _log_exception(error, message='socket error'):
    try:
        raise error
    except Exception:
        gcn._pygcn_log.exception(message)


def test_pygcn_network_errors_become_one_warning_line(caplog):
    caplog.set_level(logging.INFO, logger=gcn._pygcn_log.name)
    _log_exception(ConnectionRefusedError(111, 'Connection refused'),
                   'could not connect to 127.0.0.1:8099, will retry in 2 s')
    _log_exception(etree.XMLSyntaxError('refused', 0, 0, 0),
                   'failed to parse XML')
    _log_exception(RuntimeError('a bug'), 'exception in payload handler')
    (network, bug) = caplog.records
    assert (network.levelname, network.getMessage(), network.exc_info) == (
        'WARNING', 'could not connect to 127.0.0.1:8099, will retry in 2 s: '
        '[Errno 111] Connection refused', None)
    assert 'Traceback' not in caplog.text.split('exception in payload')[0]
    # Anything else stays an error, with its traceback.
    assert bug.levelname == 'ERROR' and bug.exc_info[0] is RuntimeError
    # The refused packet's record is there at debug level, without traceback.
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger=gcn._pygcn_log.name)
    _log_exception(etree.XMLSyntaxError('refused', 0, 0, 0),
                   'failed to parse XML')
    (record,) = caplog.records
    assert (record.levelname, record.exc_info) == ('DEBUG', None)
