#!/usr/bin/env python
"""Latency of the local GraceDb through the real ligo-gracedb client.

Starts ``gwcelery localgracedb`` as a subprocess on a free port with a
fresh SQLite database (WAL, synchronous=FULL: every write on disk before
the answer), publishing LVAlerts to a private redis-server when one is
installed, as in the local deployment. Then, one call at a time:

* baseline: ``GET /api/`` (the service root: HTTP and framework only);
* get: ``client.event(graceid)``;
* create: ``client.create_event(...)`` with the sample coinc.xml (50 kB,
  parsed);
* upload: ``client.write_log(...)`` with a 100 kB file;

each ``--calls`` times (default 1000), reporting p50, p99 and mean. Then
``--duration`` seconds (default 20) of 100 kB uploads paced at ``--rate``
per second (default 10, GraceDb's own peak target is one 1 MB POST every
0.1 s), reporting the achieved rate and the latency, and the unpaced
upload rate for comparison. Results are printed and written to
benchmarks/results/gracedb.json.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace this script's folder on sys.path: benchmarks/gcn.py there would
# hide pygcn's gcn package.
sys.path[0] = str(ROOT)

from benchmarks.common import free_port, percentile  # noqa: E402

COINC = (ROOT / 'tests' / 'data' / 'gracedb' / 'coinc.xml').read_bytes()


def wait_http(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'{proc.args[:4]} exited')
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f'{url} did not answer')


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('redis-server exited')
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError('redis-server did not listen')


def summary(latencies):
    ms = [1000 * x for x in latencies]
    return {'calls': len(ms), 'p50_ms': round(percentile(ms, 0.5), 3),
            'p99_ms': round(percentile(ms, 0.99), 3),
            'mean_ms': round(sum(ms) / len(ms), 3),
            'max_ms': round(max(ms), 3)}


def timed(call, n):
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - start)
    return latencies


def paced_uploads(client, graceid, payload, rate, duration):
    """Uploads started on a fixed schedule; returns latencies and the
    achieved rate (uploads finished per second of wall time)."""
    interval = 1.0 / rate
    n = int(rate * duration)
    latencies, late = [], 0
    begin = time.perf_counter()
    for i in range(n):
        due = begin + i * interval
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > interval:
            late += 1
        start = time.perf_counter()
        client.write_log(graceid, f'paced {i}', filename='paced.bin',
                         filecontents=payload)
        latencies.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - begin
    return latencies, n / elapsed, late


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--calls', type=int, default=1000)
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--rate', type=float, default=10.0)
    parser.add_argument('--upload-bytes', type=int, default=100_000)
    parser.add_argument('--no-alerts', action='store_true',
                        help='do not publish LVAlerts')
    args = parser.parse_args()

    from ligo.gracedb.rest import GraceDb

    from gwcelery.deployment import find_redis_server

    folder = Path(tempfile.mkdtemp(prefix='gracedb-bench-'))
    procs = []
    try:
        lvalert_url = 'none'
        redis_binary = None if args.no_alerts else find_redis_server()
        if redis_binary:
            redis_port = free_port()
            redis = subprocess.Popen(
                [redis_binary, '--port', str(redis_port), '--bind',
                 '127.0.0.1', '--save', '', '--appendonly', 'no',
                 '--dir', str(folder)], stdout=subprocess.DEVNULL)
            procs.append(redis)
            wait_port(redis_port, redis)
            lvalert_url = f'redis://127.0.0.1:{redis_port}/0'
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, '-m', 'gwcelery', 'localgracedb', '--port',
             str(port), '--database', f'sqlite:///{folder / "bench.sqlite"}',
             '--lvalert-url', lvalert_url],
            stdout=open(folder / 'server.log', 'w'), stderr=subprocess.STDOUT,
            cwd=ROOT, env={**os.environ,
                           'CELERY_CONFIG_MODULE': 'gwcelery.conf.local'})
        procs.append(server)
        url = f'http://127.0.0.1:{port}/api/'
        wait_http(url, server)
        client = GraceDb(service_url=url, force_noauth=True)
        client.ping()
        payload = os.urandom(args.upload_bytes)
        graceid = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                      filecontents=COINC).json()['graceid']

        print(f'local GraceDb at {url}, alerts: {lvalert_url}, '
              f'{args.calls} calls each')
        results = {'calls': args.calls, 'alerts': lvalert_url != 'none',
                   'upload_bytes': args.upload_bytes}
        for name, call in [
                ('baseline_root', lambda i: client.get(url)),
                ('get', lambda i: client.event(graceid)),
                ('create', lambda i: client.create_event(
                    'CBC', 'gstlal', 'coinc.xml', filecontents=COINC)),
                ('upload', lambda i: client.write_log(
                    graceid, f'upload {i}', filename='bench.bin',
                    filecontents=payload))]:
            results[name] = summary(timed(call, args.calls))
            r = results[name]
            print(f'{name:14s} p50 {r["p50_ms"]:7.2f} ms  p99 '
                  f'{r["p99_ms"]:7.2f} ms  mean {r["mean_ms"]:7.2f} ms')
        base = results['baseline_root']['p50_ms']
        for name in ('get', 'create', 'upload'):
            results[name]['p50_over_baseline'] = round(
                results[name]['p50_ms'] / base, 2)

        latencies, achieved, late = paced_uploads(
            client, graceid, payload, args.rate, args.duration)
        results['sustained_upload'] = {
            'target_per_s': args.rate, 'achieved_per_s': round(achieved, 2),
            'late_starts': late, **summary(latencies)}
        r = results['sustained_upload']
        print(f'sustained {args.upload_bytes // 1000} kB uploads: target '
              f'{args.rate}/s, achieved {r["achieved_per_s"]}/s, '
              f'{late} late, p50 {r["p50_ms"]:.2f} ms, p99 '
              f'{r["p99_ms"]:.2f} ms')
        unpaced = timed(lambda i: client.write_log(
            graceid, 'max', filename='max.bin', filecontents=payload), 200)
        results['max_upload_per_s'] = round(len(unpaced) / sum(unpaced), 1)
        print(f'unpaced {args.upload_bytes // 1000} kB uploads: '
              f'{results["max_upload_per_s"]}/s')

        out = ROOT / 'benchmarks' / 'results' / 'gracedb.json'
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + '\n')
        print(f'written to {out}')
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    main()
