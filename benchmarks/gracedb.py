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
upload rate for comparison (``--unpaced`` uploads, default 200). Results
are printed and written as JSON (``--output``).
"""
import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts (gcn.py, …) would
# shadow packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Processes, Run, answers, free_port, latencies, parse_args, wait_for)

COINC = (ROOT / 'tests' / 'data' / 'gracedb' / 'coinc.xml').read_bytes()
QUICK = {'calls': 10, 'duration': 1.0, 'unpaced': 10}


def timed(call, n):
    seconds = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        seconds.append(time.perf_counter() - start)
    return seconds


def paced_uploads(client, graceid, payload, rate, duration):
    """Uploads started on a fixed schedule; returns latencies and the
    achieved rate (uploads finished per second of wall time)."""
    interval = 1.0 / rate
    n = int(rate * duration)
    seconds, late = [], 0
    begin = time.perf_counter()
    for i in range(n):
        due = begin + i * interval
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)  # the pace of the load, not a wait
        elif now - due > interval:
            late += 1
        start = time.perf_counter()
        client.write_log(graceid, f'paced {i}', filename='paced.bin',
                         filecontents=payload)
        seconds.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - begin
    return seconds, n / elapsed, late


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--calls', type=int, default=1000)
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--rate', type=float, default=10.0)
    parser.add_argument('--unpaced', type=int, default=200,
                        help='uploads one after the other, for the top rate')
    parser.add_argument('--upload-bytes', type=int, default=100_000)
    parser.add_argument('--no-alerts', action='store_true',
                        help='do not publish LVAlerts')
    args = parse_args(parser, 'gracedb', QUICK)
    run = Run('gracedb', args)

    from ligo.gracedb.rest import GraceDb

    from gwcelery.deployment import find_redis_server

    procs = Processes('gracedb')
    try:
        lvalert_url = 'none'
        if not args.no_alerts and find_redis_server():
            lvalert_url = procs.redis()
        port = free_port()
        procs.gwcelery(
            'gracedb', 'localgracedb', '--port', str(port), '--database',
            f'sqlite:///{procs.folder / "bench.sqlite"}',
            '--lvalert-url', lvalert_url,
            env={'CELERY_CONFIG_MODULE': 'gwcelery.conf.local'})
        url = f'http://127.0.0.1:{port}/api/'
        wait_for(lambda: procs.alive('gracedb') or answers(url), timeout=30,
                 what='the local GraceDb')
        client = GraceDb(service_url=url, force_noauth=True)
        client.ping()
        payload = os.urandom(args.upload_bytes)
        graceid = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                      filecontents=COINC).json()['graceid']

        print(f'local GraceDb at {url}, alerts: {lvalert_url}, '
              f'{args.calls} calls each')
        results = {'alerts': lvalert_url != 'none'}
        for name, call in [
                ('baseline_root', lambda i: client.get(url)),
                ('get', lambda i: client.event(graceid)),
                ('create', lambda i: client.create_event(
                    'CBC', 'gstlal', 'coinc.xml', filecontents=COINC)),
                ('upload', lambda i: client.write_log(
                    graceid, f'upload {i}', filename='bench.bin',
                    filecontents=payload))]:
            results[name] = latencies(timed(call, args.calls))
            r = results[name]
            print(f'{name:14s} p50 {r["p50_ms"]:7.2f} ms  p99 '
                  f'{r["p99_ms"]:7.2f} ms  mean {r["mean_ms"]:7.2f} ms')
        base = results['baseline_root']['p50_ms']
        for name in ('get', 'create', 'upload'):
            results[name]['p50_over_baseline'] = round(
                results[name]['p50_ms'] / base, 2)

        seconds, achieved, late = paced_uploads(
            client, graceid, payload, args.rate, args.duration)
        results['sustained_upload'] = {
            'target_per_s': args.rate, 'achieved_per_s': round(achieved, 2),
            'late_starts': late, **latencies(seconds)}
        r = results['sustained_upload']
        print(f'sustained {args.upload_bytes // 1000} kB uploads: target '
              f'{args.rate}/s, achieved {r["achieved_per_s"]}/s, '
              f'{late} late, p50 {r["p50_ms"]:.2f} ms, p99 '
              f'{r["p99_ms"]:.2f} ms')
        unpaced = timed(lambda i: client.write_log(
            graceid, 'max', filename='max.bin', filecontents=payload),
            args.unpaced)
        results['max_upload_per_s'] = round(len(unpaced) / sum(unpaced), 1)
        print(f'unpaced {args.upload_bytes // 1000} kB uploads: '
              f'{results["max_upload_per_s"]}/s')
        client.close()
    finally:
        procs.stop(timeout=10)
    run.write(results)
    shutil.rmtree(procs.folder, ignore_errors=True)


if __name__ == '__main__':
    main()
