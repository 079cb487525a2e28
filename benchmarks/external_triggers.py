#!/usr/bin/env python
"""External triggers and RAVEN: GCN notice to External event, and
superevent to recorded coincidence.

Starts a private redis-server, the local GraceDb (LVAlerts on the embedded
Redis transport), the local GCN feed, a general worker with beat (the GCN
and LVAlert listeners) and one exttrig worker (``-c 1``, as deployed), all
real subprocesses. Then, ``--n`` times each (default 50), one at a time:

* **notice → event**: a Fermi GBM notice (a new trigger, edited from the
  sample) is queued for the feed; measured until the exttrig worker has
  created the External event (its log line), from the queueing and from
  the listener's receipt (the general worker's log).
  Baseline: ``create_event`` of the same notice through the client, the
  GraceDb call alone.
* **superevent → coincidence**: a superevent is created 2 s before one of
  those GRBs; measured from ``create_superevent`` returning until the
  coincidence is recorded (EM_COINC on both, ``coincidence_far.json``).
* **notice → coincidence**: the other order; a superevent first, then the
  notice of a GRB 2 s after it; from queueing the notice.

Prints p50/p99 and writes the JSON record of :mod:`benchmarks.common` to
``--output`` (default ``benchmarks/results/external_triggers.json``);
``--quick`` runs 3 of each.
"""
import argparse
import datetime
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose gcn.py would shadow pygcn.
sys.path[0] = str(ROOT)

from benchmarks import superevents  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Run, free_port, latencies, parse_args, wait_for)

CONF = 'benchmarks.external_triggers_conf'
QUICK = {'n': 3}
_STAMP = r'^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]*\] '
CREATED = re.compile(_STAMP + r'GCN notice (\S+) \(Fermi trigger \S+\): '
                     r'event (\S+) created', re.M)
RECEIVED = re.compile(_STAMP + r'Received GCN notice (\S+)', re.M)
RECORDED = re.compile(_STAMP + r'Recorded the coincidence of (\S+) with '
                      r'(\S+)$', re.M)


def _seconds(stamp):
    when = datetime.datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S,%f')
    return when.timestamp()


class System(superevents.System):
    """The superevent benchmark's Redis and GraceDb, with the GCN feed,
    the listeners and an exttrig worker."""

    def start_all(self):
        feed_port = free_port()
        self.start_gracedb(
            CONF, GWCELERY_BENCH_GCN_ADDRESS=f'127.0.0.1:{feed_port}')
        self.gwcelery('feed', 'gcn', 'feed')
        from gwcelery import app
        self.worker(app, 'general', 'celery', '-c', '6')
        self.gwcelery('beat', 'beat', '-l', 'info',
                      '-s', str(self.folder / 'beat-schedule'))
        # As deployed: one process.
        self.worker(app, 'exttrig', 'exttrig', '-c', '1')
        from gwcelery.tasks.raven import EXTERNAL_NODES, SUPEREVENT_NODES
        self.wait_listening(SUPEREVENT_NODES + EXTERNAL_NODES)
        wait_for(lambda: self.alive('feed') or re.search(
            r'subscriber \S+ connected', self.log('feed')), timeout=90,
            what='the GCN listener')

    def created(self):
        """{ivorn: (graceid, time the event was created)}."""
        return {ivorn: (graceid, _seconds(stamp)) for stamp, ivorn, graceid
                in CREATED.findall(self.log('exttrig'))}

    def received(self):
        """{ivorn: time the GCN listener received it}."""
        return {ivorn: _seconds(stamp)
                for stamp, ivorn in RECEIVED.findall(self.log('general'))}

    def recorded(self):
        """{(superevent, event): time the coincidence was first recorded}."""
        found = {}
        for stamp, sid, graceid in RECORDED.findall(self.log('exttrig')):
            found.setdefault((sid, graceid), _seconds(stamp))
        return found


def notices_to_events(system, client, n, t0):
    """Queue one notice at a time; return (latencies, baseline, grbs)."""
    from gwcelery.vtp import feed
    from tests.fixtures.exttrig import edit_notice
    from_queue, from_receipt, baseline, grbs = [], [], [], []
    for i in range(n):
        t = t0 + 1000.0 * i
        notice = edit_notice('fermi_grb_gcn.xml', trigger_id=str(8e8 + i),
                             gpstime=t, ivorn=f'ivo://bench/Fermi#n{i}')
        queued = time.time()
        feed.enqueue(system.redis_url, [notice])
        ivorn = f'ivo://bench/Fermi#n{i}'
        wait_for(lambda: ivorn in system.created(), timeout=60,
                 interval=0.01, what=f'event of {ivorn}')
        graceid, created = system.created()[ivorn]
        from_queue.append(created - queued)
        from_receipt.append(created - system.received()[ivorn])
        grbs.append((graceid, t))
        # Baseline: the same upload, straight to GraceDb.
        other = edit_notice(notice, trigger_id=str(9e8 + i),
                            gpstime=t + 500.0)
        start = time.perf_counter()
        client.create_event('External', 'Fermi', 'initial.data',
                            search='GRB', filecontents=other)
        baseline.append(time.perf_counter() - start)
    return from_queue, from_receipt, baseline, grbs


def superevent_at(client, gpstime):
    from tests.fixtures.superevents import coinc_xml
    event = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                search='AllSky',
                                filecontents=coinc_xml(gpstime)).json()
    return client.create_superevent(
        gpstime - 1, gpstime, gpstime + 1,
        event['graceid']).json()['superevent_id']


def superevents_to_coincidences(system, client, grbs):
    seconds = []
    for graceid, t in grbs:
        sid = superevent_at(client, t - 2.0)
        created = time.time()
        wait_for(lambda: (sid, graceid) in system.recorded(), timeout=60,
                 interval=0.01, what=f'the coincidence of {sid}')
        seconds.append(system.recorded()[sid, graceid] - created)
    return seconds


def notices_to_coincidences(system, client, n, t0):
    from gwcelery.vtp import feed
    from tests.fixtures.exttrig import edit_notice
    seconds = []
    for i in range(n):
        t = t0 + 1000.0 * i
        sid = superevent_at(client, t)
        wait_for(lambda: re.search(rf'Coincidence search of {sid} ',
                                   system.log('exttrig')), timeout=60,
                 interval=0.01, what=f'the search of {sid}')
        ivorn = f'ivo://bench/Fermi#c{i}'
        notice = edit_notice('fermi_grb_gcn.xml', trigger_id=str(7e8 + i),
                             gpstime=t + 2.0, ivorn=ivorn)
        queued = time.time()
        feed.enqueue(system.redis_url, [notice])
        wait_for(lambda: ivorn in system.created(), timeout=60,
                 interval=0.01, what=f'event of {ivorn}')
        graceid = system.created()[ivorn][0]
        wait_for(lambda: (sid, graceid) in system.recorded(), timeout=60,
                 interval=0.01, what=f'the coincidence of {sid}')
        seconds.append(system.recorded()[sid, graceid] - queued)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=50,
                        help='notices and superevents per case')
    args = parse_args(parser, 'external_triggers', QUICK)
    run = Run('external_triggers', args)
    system = System('external_triggers')
    try:
        system.start_all()
        from ligo.gracedb.rest import GraceDb
        client = GraceDb(service_url=system.gracedb_url, force_noauth=True)
        queue, receipt, base, grbs = notices_to_events(
            system, client, args.n, 1_400_000_000.0)
        results = {
            'notice_to_event': latencies(queue),
            'received_to_event': latencies(receipt),
            'baseline_create_event': latencies(base),
            'superevent_to_coincidence': latencies(
                superevents_to_coincidences(system, client, grbs)),
            'notice_to_coincidence': latencies(notices_to_coincidences(
                system, client, args.n, 1_500_000_000.0)),
        }
        client.close()
    finally:
        system.stop()
    for name, r in results.items():
        print(f'{name:28} n={r["n"]:<4} p50 {r["p50_ms"]:8.1f} ms   '
              f'p99 {r["p99_ms"]:8.1f} ms   max {r["max_ms"]:8.1f} ms')
    run.write(results)
    print(f'logs in {system.folder}')


if __name__ == '__main__':
    main()
