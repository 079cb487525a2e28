"""The benchmark scripts: each runs in quick mode and writes a valid record;
benchmarks/compare.py divides the results of two records."""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.common import check_layout, numbers

from .conftest import ROOT

BENCHMARKS = ('alert_path', 'bayestar', 'dispatch', 'external_triggers',
              'gcn', 'gracedb', 'lvalert', 'superevents')


def record(name='gracedb', **results):
    return {'benchmark': name, 'started': '2026-12-01T08:00:00+00:00',
            'machine': {'cpus': 2, 'load_average_start': [0.5, 0.4, 0.3],
                        'load_average_end': [1.5, 0.6, 0.3],
                        'python': '3.11.7', 'celery': '5.7.0',
                        'kombu': '5.7.0'},
            'parameters': {'calls': 10, 'quick': True},
            'results': results}


def compare(tmp_path, a, b):
    for name, content in (('a.json', a), ('b.json', b)):
        (tmp_path / name).write_text(json.dumps(content))
    return subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'compare.py'),
         str(tmp_path / 'a.json'), str(tmp_path / 'b.json')],
        capture_output=True, text=True, timeout=30)


def test_compare_prints_the_ratio_of_every_number(tmp_path):
    a = record(get={'p50_ms': 2.0, 'n': 10}, alerts=True, only_a=1.0)
    b = record(get={'p50_ms': 3.0, 'n': 10}, alerts=True, only_b=4.0)
    b['parameters']['calls'] = 1000
    b['machine']['load_average_start'] = [1.25, 0.4, 0.3]
    result = compare(tmp_path, a, b)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:]
            for line in result.stdout.splitlines() if line.strip()}
    assert rows['get.p50_ms'] == ['2', '3', '1.50']
    assert rows['get.n'] == ['10', '10', '1.00']
    assert rows['only_a'] == ['1', '—', '—']
    assert rows['only_b'] == ['—', '4', '—']
    assert 'alerts' not in rows  # a boolean is not a measurement
    assert "calls 10 → 1000" in result.stdout
    assert 'load average 0.50 at start' in result.stdout
    assert 'load average 1.25 at start' in result.stdout


def test_compare_refuses_runs_of_different_benchmarks(tmp_path):
    result = compare(tmp_path, record('gcn', x=1.0), record('gracedb', x=1.0))
    assert result.returncode == 2
    assert "'gcn'" in result.stderr and "'gracedb'" in result.stderr


@pytest.mark.parametrize('broken, message', [
    ({'results': {'x': True}}, 'results hold no number'),
    ({'machine': {'cpus': 2}}, 'machine lacks load_average_start'),
    ({'extra': 1}, 'expected the keys'),
    ({'started': 'yesterday'}, 'Invalid isoformat'),
])
def test_layout_check_rejects_other_records(tmp_path, broken, message):
    bad = {**record(x=1.0), **broken}
    with pytest.raises(ValueError, match=message):
        check_layout(bad)
    result = compare(tmp_path, record(x=1.0), bad)
    assert result.returncode == 2 and 'b.json' in result.stderr


@pytest.fixture(scope='module')
def quick_runs(tmp_path_factory):
    """Every benchmark started at once with ``--quick`` (they take their
    own servers and ports, so they can share the machine), as
    ``{name: (process, output path, log path)}``."""
    folder = tmp_path_factory.mktemp('benchmarks')
    # The benchmarks choose their own configuration, not the tests'.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('CELERY_', 'GWCELERY_'))}
    env['TMPDIR'] = str(folder)  # their logs stay with the test's files
    runs = {}
    for name in BENCHMARKS:
        output, log = folder / f'{name}.json', folder / f'{name}.log'
        runs[name] = (subprocess.Popen(
            [sys.executable, str(ROOT / 'benchmarks' / f'{name}.py'),
             '--quick', '--output', str(output)],
            stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env,
            cwd=folder, start_new_session=True), output, log)
    yield runs
    for proc, _, _ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize('name', BENCHMARKS)
def test_quick_run_writes_a_record(quick_runs, name):
    proc, output, log = quick_runs[name]
    try:
        proc.wait(240)
    except subprocess.TimeoutExpired:
        pytest.fail(f'{name} still running after 240 s:\n'
                    + log.read_text()[-3000:])
    assert proc.returncode == 0, log.read_text()[-3000:]
    run = json.loads(output.read_text())
    check_layout(run)
    assert run['benchmark'] == name
    assert run['parameters']['quick'] is True
    assert 'output' not in run['parameters']
    assert run['machine']['cpus'] == os.cpu_count()
    assert all(len(run['machine'][k]) == 3 for k in (
        'load_average_start', 'load_average_end'))
    values = dict(numbers(run['results']))
    # Every set of latencies has the same keys, in a consistent order.
    sets = [k[:-len('p50_ms')] for k in values
            if k.rpartition('.')[2] == 'p50_ms']
    assert sets, values
    for prefix in sets:
        n, p50, p99, mean, most = (values[prefix + k] for k in (
            'n', 'p50_ms', 'p99_ms', 'mean_ms', 'max_ms'))
        assert n > 0 and 0 <= p50 <= p99 <= most and mean <= most, prefix
