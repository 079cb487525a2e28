"""The chaos suite in its short form: ``benchmarks/chaos.py --quick``.

The script runs the local deployment under supervisor (Redis with its
append-only file, the local GraceDb, the GCN feed, beat and every worker),
SIGKILLs each program once while uploads, GCN notices and bank candidates
stream in, and checks, from GraceDb and from what a pygcn subscriber
received, that nothing was lost and nothing was sent twice. This test runs
it once and asserts each of its checks and its report, kill by kill.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

from benchmarks.chaos import KILLS
from benchmarks.common import check_layout

from .conftest import ROOT

#: Seconds the script may take: about two minutes on an idle 2-core
#: machine, and several times that beside the rest of the suite on a busy
#: one (three real localizations, nine kills and restarts).
SCRIPT_TIMEOUT = 900

# pytest-timeout counts the module fixture's run against the first test:
# leave the script's own timeout room to report what it had printed.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SCRIPT_TIMEOUT + 60)]


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp('chaos')
    output = folder / 'chaos.json'
    # The deployment takes its own configuration, not the tests'.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('CELERY_', 'GWCELERY_'))}
    env['TMPDIR'] = str(folder)  # its state folder and logs stay here
    log = folder / 'chaos.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / 'benchmarks' / 'chaos.py'), '--quick',
             '--output', str(output)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
        try:
            proc.wait(SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            # SIGINT, not SIGKILL: the script then stops its deployment
            # (supervisor and every program) before it exits.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f'benchmarks/chaos.py --quick took more than '
                        f'{SCRIPT_TIMEOUT} s; it printed:\n'
                        + log.read_text(errors='replace')[-5000:])
    text = log.read_text(errors='replace')
    assert output.exists(), text[-5000:]
    record = json.loads(output.read_text())
    return proc.returncode, record, text


def _check(report, name):
    _, record, text = report
    outcome = record['results']['checks'][name]
    assert outcome['ok'], json.dumps(outcome, indent=1) + '\n' + text[-3000:]
    return outcome


def test_every_event_is_in_exactly_one_superevent(report):
    outcome = _check(report, 'every_event_in_one_superevent')
    assert outcome['events'] >= report[1]['results']['counts']['events']
    assert not outcome['without_superevent'] and not outcome['in_two']


def test_every_trigger_is_one_external_event(report):
    outcome = _check(report, 'every_trigger_one_external_event')
    assert outcome['triggers'] == outcome['external_events'] > 0


def test_every_candidate_had_one_preliminary_notice(report):
    outcome = _check(report, 'one_preliminary_notice_each')
    # The baseline candidate and those of the openmp and voevent kills.
    assert outcome['candidates'] == 3
    assert sorted(outcome['first_preliminary_received'].values()) == [1, 1, 1]


def test_nothing_is_recorded_twice(report):
    _check(report, 'nothing_twice')


def test_report_has_every_kill_and_its_delay(report):
    returncode, record, text = report
    check_layout(record)
    results = record['results']
    assert [k['program'] for k in results['kills']] == list(KILLS)
    for kill in results['kills']:
        assert kill['restarted_s'] > 0, kill
    candidates = [k for k in results['kills'] if 'notice_s' in k]
    assert {k['program'] for k in candidates} == {'worker-openmp',
                                                  'worker-voevent'}
    assert all(k['notice_s'] > 0 for k in candidates), candidates
    assert results['settled_after_last_upload_s'] is not None
    assert results['all_checks_passed'] and returncode == 0, text[-3000:]
