"""The GCN handler registry: keys, decoding and failure handling."""
import logging
import os
import subprocess
import sys

import pytest
from gcn import NoticeType

from gwcelery.tasks import gcn

from .conftest import free_port
from .fixtures.gcn import DATA, SAMPLES, voevent
from .test_vtp_parsing import SMALL_BOMB


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


@pytest.mark.parametrize('payload, message', [
    (b'garbage', 'Start tag expected'),
    (SMALL_BOMB, 'declares a DTD'),
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
        voevent('ivo://x', NoticeType.AGILE_MCAL_ALERT)) is None
    assert 'no handler registered' in caplog.text


def test_lost_broker_is_retried_then_logged(tmp_path):
    """With the broker unreachable, the listener's dispatcher retries, then
    names the notice it lost (run in a process of its own, whose broker is
    a closed port)."""
    script = (
        'import logging, sys\n'
        'logging.basicConfig(level=logging.INFO)\n'
        'from gwcelery.tasks import gcn\n'
        'import tests.fixtures.gcn  # the recording handlers\n'
        'from gwcelery.vtp.parsing import parse\n'
        'gcn.DISPATCH_RETRY_TIMEOUT = 3\n'
        '# Give up on the broker and result backend quickly.\n'
        'gcn.app.conf.result_backend_transport_options = {\n'
        '    "retry_policy": {"max_retries": 1, "interval_start": 0}}\n'
        'gcn.app.conf.task_publish_retry_policy = {\n'
        '    "max_retries": 1, "interval_start": 0}\n'
        'payload = open(sys.argv[1], "rb").read()\n'
        'gcn._dispatch(payload, parse(payload))\n')
    url = f'redis://127.0.0.1:{free_port()}/0'
    result = subprocess.run(
        [sys.executable, '-c', script, str(DATA / 'snews_gcn.xml')],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, 'CELERY_BROKER_URL': url,
             'CELERY_RESULT_BACKEND': url})
    assert result.returncode == 0, result.stderr
    assert 'Could not dispatch GCN notice ivo://nasa.gsfc.gcn/SNEWS' \
        in result.stderr
    assert 'retrying in 0.5 s' in result.stderr
    assert 'Lost GCN notice ivo://nasa.gsfc.gcn/SNEWS#Event2018-09-18' \
        in result.stderr
