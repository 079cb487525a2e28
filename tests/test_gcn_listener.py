"""gcn.listen in a real worker (started by a real beat): notices from
pygcn's own test server reach the right handlers; a server that breaks the
framing costs the listener a reconnection, nothing more (hostile XML:
tests/test_xml_safety.py)."""
import struct
import subprocess
import sys

import pytest

from gwcelery.util.waiting import free_port, wait_for
from gwcelery.vtp.framing import frame

from .fixtures.gcn import DATA, SAMPLES, HostileServer, sha256, voevent

pytestmark = pytest.mark.slow

_SERVE = ('import gcn, logging, sys; logging.basicConfig(level=logging.INFO); '
          'gcn.serve(sys.argv[2:], port=int(sys.argv[1]), '
          'retransmit_timeout=0.2)')


def test_samples_reach_the_right_handlers(listener, gcn_received, tmp_path,
                                          gcn_samples):
    unknown = tmp_path / 'unknown.xml'
    unknown.write_bytes(voevent('ivo://tests#unknown', notice_type=9999))
    port = free_port()
    files = [str(DATA / name) for name in sorted(SAMPLES)] + [str(unknown)]
    server = subprocess.Popen(
        [sys.executable, '-c', _SERVE, str(port), *files],
        stdout=open(tmp_path / 'serve.log', 'w'), stderr=subprocess.STDOUT)
    try:
        worker = listener(port)

        def all_handled():
            got = {(r['handler'], r['sha256']) for r in gcn_received()}
            return got >= {(handler, sha256(gcn_samples[name]))
                           for name, (_, handler) in SAMPLES.items()}
        wait_for(all_handled, timeout=60, what='every sample to be handled')
        wait_for(lambda: 'ivo://tests#unknown has type 9999, which is not a '
                 'known GCN notice type' in worker.log(), what='log of 9999')
    finally:
        server.kill()
        server.wait()
    for record in gcn_received():
        name = next(n for n in SAMPLES
                    if sha256(gcn_samples[n]) == record['sha256'])
        assert SAMPLES[name][1] == record['handler']
    assert 'no handler registered' in worker.log()


def test_broken_framing_costs_only_reconnections(listener, gcn_received,
                                                 gcn_samples):
    good = gcn_samples['snews_gcn.xml']
    steps = [
        (struct.pack('!I', 100 << 20), False),
        (frame(b'x' * ((1 << 20) + 1)), False),
        (struct.pack('!I', 5000) + b'<voe:VOEvent', True),
        (frame(voevent('ivo://tests#unknown', notice_type=9999))
         + frame(good), False),
    ]
    server = HostileServer(steps)
    server.start()
    try:
        worker = listener(server.port)
        wait_for(lambda: [r for r in gcn_received() if r['handler'] == 'snews'],
                 timeout=60, what='the good notice after the hostile ones')
    finally:
        server.close()
    server.join(20)
    outcomes = server.outcomes
    assert len(outcomes) == len(steps)
    # Every hostile connection was dropped by the listener (or ended by the
    # server for the truncated packet), and none was acked.
    for outcome in outcomes[:2]:
        assert outcome == {'replies': [], 'closed_by_listener': True}
    assert outcomes[2]['replies'] == []
    # The last connection: both VOEvents acked, the known one handled.
    assert [r for r in outcomes[3]['replies'] if r[0] == 'ack'] == [
        ('ack', 'ivo://tests#unknown'),
        ('ack', 'ivo://nasa.gsfc.gcn/SNEWS#Event2018-09-18T16:00:01.00_1000194-580')]
    (record,) = gcn_received()
    assert record['sha256'] == sha256(good)
    log = worker.log()
    assert 'peer announced a packet of 104857600 bytes, over the limit' in log
    assert 'peer announced a packet of 1048577 bytes' in log
    assert 'connection closed by peer' in log
    assert 'not a known GCN notice type' in log
    # Each a warning line (pygcn would log errors with tracebacks).
    assert 'Traceback' not in log
