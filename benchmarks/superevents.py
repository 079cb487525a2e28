#!/usr/bin/env python
"""Superevent manager under load: a burst for one candidate, then a steady
stream.

Starts a private redis-server, the local GraceDb (publishing LVAlerts on
the embedded Redis transport), a general worker with beat (the LVAlert
listener) and the serial superevent worker, all as real subprocesses, then
uploads events through the real ligo-gracedb client as pipelines do:

* burst: ``--burst`` uploads (default 200) from gstlal, PyCBC, SPIIR and
  MBTA for one candidate within ``--burst-window`` seconds (default 2),
  one of them the loudest three-detector event. Reports the time from the
  first upload until the last alert is handled and the superevent holds
  every event with the right preferred event (time to settle, from the
  first and from the last upload), and events handled per second.
* sustained: ``--rate`` events per second (default 20) for ``--duration``
  seconds (default 60), four pipelines per candidate, a new candidate
  every four events. Reports p50/p99 of the handling latency: from the
  upload's return to the end of the superevent handler for that event
  (from the worker's log).

Both report the GraceDb requests the manager made per handled alert
(median and mean over the alerts, each alert counting its batch's requests
divided by the batch's alerts) and the number of batches, from the
manager's ``Batch of … GraceDb requests`` log lines.

Baseline, same run, same uploads: a handler that only notes its start time,
registered on the same nodes and run by a worker of its own, as the
manager is — the cost of GraceDb → LVAlert → listener → Celery alone. The
general worker runs the orchestrator's handlers for the same events, as in
the deployment, and takes its share of the cores (``--hold-orchestrator``
holds them, and RAVEN's, to measure without). Results are printed and
written as JSON (``--output``).
"""
import argparse
import datetime
import random
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts would shadow
# packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Processes, Run, latencies, parse_args, percentile,
    wait_for)

CONF = 'benchmarks.superevents_conf'
QUICK = {'burst': 8, 'burst_window': 0.5, 'rate': 8.0, 'duration': 1.0}
PIPELINES = ['gstlal', 'pycbc', 'spiir', 'mbtaonline']
HANDLED = re.compile(
    r'^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]*\] '
    r'Handled new alert for (\S+):', re.M)
BATCH = re.compile(r'Batch of \d+ alerts: (\d+) handled, (\d+) GraceDb '
                   r'requests', re.M)


class System(Processes):
    """The processes under test."""

    def start_gracedb(self, conf=CONF, **env):
        """Redis and the local GraceDb, for workers of the configuration
        module ``conf`` (with more environment variables ``env``)."""
        self.gracedb_over_redis(conf, **env)

    def start_all(self, hold_orchestrator=False):
        self.start_gracedb(GWCELERY_BENCH_HOLD_ORCHESTRATOR=(
            '1' if hold_orchestrator else ''))
        from gwcelery import app
        self.worker(app, 'general', 'celery', '-c', '4')
        self.gwcelery('beat', 'beat', '-l', 'info',
                      '-s', str(self.folder / 'beat-schedule'))
        self.worker(app, 'superevent', 'superevent', '-c', '1',
                    '--prefetch-multiplier', '1')
        from benchmarks.superevents_handlers import QUEUE
        self.worker(app, 'baseline', QUEUE, '-c', '1')
        from gwcelery.tasks.superevents import NODES
        self.wait_listening(NODES)

    def handled_times(self):
        """{graceid: time the superevent handler finished}, from its log."""
        found = {}
        for stamp, graceid in HANDLED.findall(self.log('superevent')):
            when = datetime.datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S,%f')
            found.setdefault(graceid, when.timestamp())
        return found

    def wait_handled(self, ids, what):
        """Wait until the superevent handler and the baseline handler have
        both seen every event of ``ids``."""
        wait_for(lambda: set(ids) <= set(self.handled_times())
                 and set(ids) <= set(self.baseline_times()), timeout=300,
                 interval=0.2, what=f'{what} to be handled')

    def batches(self):
        """``[(handled, requests)]`` of every batch so far, in order."""
        return [(int(h), int(r))
                for h, r in BATCH.findall(self.log('superevent'))]

    def baseline_times(self):
        from benchmarks.superevents_handlers import STARTS_KEY
        return {k.decode(): float(v)
                for k, v in self.client.hgetall(STARTS_KEY).items()}


class Uploader:
    """Pipelines: uploads through the real client, one client per thread."""

    def __init__(self, url, threads):
        self.url = url
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads)
        self.clients = []

    def _client(self):
        if not hasattr(self.local, 'client'):
            from ligo.gracedb.rest import GraceDb
            self.local.client = GraceDb(service_url=self.url,
                                        force_noauth=True)
            self.clients.append(self.local.client)
        return self.local.client

    def _upload(self, pipeline, gpstime, **kwargs):
        from tests.fixtures.superevents import PIPELINES as GROUPS
        from tests.fixtures.superevents import event_file
        group, name = GROUPS[pipeline]
        filename, data = event_file(pipeline, gpstime, **kwargs)
        graceid = self._client().create_event(
            group, name, filename, search='AllSky',
            filecontents=data).json()['graceid']
        return graceid, time.time()

    def paced(self, specs, rate):
        """Upload specs ``(pipeline, gpstime, kwargs)`` at ``rate`` per
        second; return ``[(graceid, returned_at)]`` in spec order."""
        start = time.monotonic()
        futures = []
        for i, (pipeline, gpstime, kwargs) in enumerate(specs):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(self.pool.submit(self._upload, pipeline, gpstime,
                                            **kwargs))
        return [f.result() for f in futures]

    def close(self):
        self.pool.shutdown()
        for client in self.clients:
            client.close()


def requests_per_alert(batches):
    """Median and mean GraceDb requests per handled alert, and the number
    of batches, of ``[(handled, requests)]``."""
    shares = [r / h for h, r in batches if h for _ in range(h)]
    if not shares:
        return {'batches': len(batches)}
    return {'median': round(percentile(shares, 0.5), 3),
            'mean': round(sum(shares) / len(shares), 3),
            'batches': len(batches)}


def burst(system, uploader, n, window, rng):
    from ligo.gracedb.rest import GraceDb
    t = 1_400_000_000.0
    loudest = n * 2 // 3
    specs = []
    for i in range(n):
        if i == loudest:
            kwargs = dict(snr=30.0, ifos=('H1', 'L1', 'V1'))
        else:
            kwargs = dict(snr=rng.uniform(8, 25))
        specs.append((PIPELINES[i % 4], t + rng.uniform(-0.3, 0.3), kwargs))
    before = len(system.batches())
    started = time.time()
    uploads = uploader.paced(specs, n / window)
    last_upload = max(at for _, at in uploads)
    upload_span = last_upload - started
    ids = [g for g, _ in uploads]
    system.wait_handled(ids, 'the burst')
    handled = system.handled_times()
    settled = max(handled[g] for g in ids)
    client = GraceDb(service_url=system.gracedb_url, force_noauth=True)
    found = list(client.superevents(query=f'{t - 100} .. {t + 100}'))
    client.close()
    ok = (len(found) == 1 and sorted(found[0]['gw_events']) == sorted(ids)
          and found[0]['preferred_event'] == ids[loudest])
    baseline = system.baseline_times()
    base_settled = max(baseline[g] for g in ids if g in baseline)
    return {
        'events': n, 'upload_window_s': round(upload_span, 3),
        'superevents': len(found), 'correct': ok,
        'time_to_settle_s': round(settled - started, 3),
        'settled_after_last_upload_s': round(settled - last_upload, 3),
        'events_per_s': round(n / (settled - started), 1),
        'baseline_last_alert_s': round(base_settled - started, 3),
        'gracedb_requests_per_alert': requests_per_alert(
            system.batches()[before:]),
    }


def sustained(system, uploader, rate, duration, rng):
    t0 = 1_500_000_000.0
    n = int(rate * duration)
    specs = [(PIPELINES[i % 4], t0 + 10.0 * (i // 4) + rng.uniform(-0.3, 0.3),
              dict(snr=rng.uniform(8, 25))) for i in range(n)]
    before = len(system.batches())
    started = time.monotonic()
    uploads = uploader.paced(specs, rate)
    achieved = n / (time.monotonic() - started)
    ids = [g for g, _ in uploads]
    system.wait_handled(ids, 'the stream')
    handled = system.handled_times()
    baseline = system.baseline_times()
    latency = [handled[g] - at for g, at in uploads]
    base = [baseline[g] - at for g, at in uploads if g in baseline]
    return {'target_per_s': rate, 'achieved_per_s': round(achieved, 2),
            'events': n, 'candidates': (n + 3) // 4,
            'handling': latencies(latency), 'baseline': latencies(base),
            'gracedb_requests_per_alert': requests_per_alert(
                system.batches()[before:])}


def _requests(result):
    counts = result['gracedb_requests_per_alert']
    return (f'GraceDb requests per alert: median {counts.get("median")}, '
            f'mean {counts.get("mean")} ({counts["batches"]} batches)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--burst', type=int, default=200)
    parser.add_argument('--burst-window', type=float, default=2.0)
    parser.add_argument('--rate', type=float, default=20.0)
    parser.add_argument('--duration', type=float, default=60.0)
    parser.add_argument('--threads', type=int, default=8,
                        help='concurrent uploads')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--hold-orchestrator', action='store_true',
                        help="hold the orchestrator's and RAVEN's handlers "
                             'on a queue no worker reads, to measure the '
                             'manager without their share of the cores')
    args = parse_args(parser, 'superevents', QUICK)
    run = Run('superevents', args)
    rng = random.Random(args.seed)

    system = System('superevents')
    uploader = None
    try:
        system.start_all(args.hold_orchestrator)
        uploader = Uploader(system.gracedb_url, args.threads)
        results = {'burst': burst(system, uploader, args.burst,
                                  args.burst_window, rng)}
        r = results['burst']
        print(f'burst: {r["events"]} uploads in {r["upload_window_s"]} s → '
              f'{r["superevents"]} superevent(s), correct: {r["correct"]}; '
              f'settled after {r["time_to_settle_s"]} s, '
              f'{r["settled_after_last_upload_s"]} s after the last upload '
              f'({r["events_per_s"]} events/s); baseline handler saw the '
              f'last alert after {r["baseline_last_alert_s"]} s; '
              f'{_requests(r)}')
        results['sustained'] = sustained(system, uploader, args.rate,
                                         args.duration, rng)
        r = results['sustained']
        print(f'sustained: {r["achieved_per_s"]}/s for {args.duration} s '
              f'({r["events"]} events, {r["candidates"]} candidates): '
              f'handling p50 {r["handling"]["p50_ms"]} ms, p99 '
              f'{r["handling"]["p99_ms"]} ms; baseline p50 '
              f'{r["baseline"]["p50_ms"]} ms, p99 '
              f'{r["baseline"]["p99_ms"]} ms; {_requests(r)}')
    finally:
        if uploader:
            uploader.close()
        system.stop()
    run.write(results)
    print(f'logs in {system.folder}')


if __name__ == '__main__':
    main()
