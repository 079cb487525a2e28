#!/usr/bin/env python
"""BAYESTAR through gwcelery against BAYESTAR alone, on bank events.

Starts a private redis-server, the local GraceDb (publishing LVAlerts on
the embedded Redis transport), a general worker with beat (the LVAlert
listener) and an openmp worker as the local deployment runs it (``-c 1
--prefetch-multiplier 1``), all as real subprocesses, on the
configuration :mod:`benchmarks.bayestar_conf`. Then, for the first2years
bank events of ``--events``, one localization at a time so that none
shares the cores with another:

1. **bare** against **task**, ``--repeat`` times per event, alternating
   which goes first: ``ligo.skymap.bayestar.localize`` called in this
   process on the event read with ``LigoLWEventSource`` (the call alone is
   timed), and the :func:`gwcelery.tasks.bayestar.localize` task through
   the openmp worker, from sending it the coinc.xml and psd.xml.gz bytes to
   holding the FITS bytes. Also the CPU time (all threads) of BAYESTAR's
   computational section in both, from ligo.skymap's own log line, which
   a loaded machine changes far less than wall time.
2. **pipeline**, per event: uploaded to the local GraceDb as gstlal does
   (coinc.xml, then psd.xml.gz, through the real ligo-gracedb client);
   the latency from the psd.xml.gz alert to the SKYMAP_READY alert, both
   read from the LVAlert stream (Redis stream ids are the server's
   millisecond clock); then, before the next event, the time from
   SKYMAP_READY to the alert of each sky-map product (annotation, all-sky
   plot, volume rendering) and from the event's ``new`` alert to each
   classification file.

Results are printed and written as one JSON record (see
:mod:`benchmarks.common`).
"""
import argparse
import io
import json
import logging
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts would shadow
# packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks import superevents  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Run, latencies, parse_args, wait_for)

CONF = 'benchmarks.bayestar_conf'
QUICK = {'events': ['bbh_hl_1'], 'repeat': 1, 'volume_dpi': 10,
         'product_timeout': 120.0}
#: ligo.skymap's log line at the end of BAYESTAR's computational section.
SECTION = re.compile(r'finished computationally-intensive section in '
                     r'real=([0-9.]+)s, user=([0-9.]+)s, sys=([0-9.]+)s')


class System(superevents.System):
    """The superevent benchmark's Redis and GraceDb, with a general worker,
    beat and the openmp worker."""

    def start_all(self, volume_dpi):
        self.start_gracedb(CONF, GWCELERY_BENCH_VOLUME_DPI=str(volume_dpi))
        from gwcelery import app
        self.worker(app, 'general', 'celery', '-c', '6')
        self.gwcelery('beat', 'beat', '-l', 'info',
                      '-s', str(self.folder / 'beat-schedule'))
        self.worker(app, 'openmp', 'openmp', '-c', '1',
                    '--prefetch-multiplier', '1')
        from gwcelery.tasks.orchestrator import CBC_NODES
        self.wait_listening(CBC_NODES)
        self.wait_openmp()

    def alerts(self, graceid, node='cbc_gstlal'):
        """``[(server time, alert)]`` of an event on its LVAlert stream."""
        from gwcelery.lvalert.transport.redis_streams import (
            FIELD, stream_key)
        found = []
        for entry_id, fields in self.client.xrange(stream_key(node)):
            alert = json.loads(fields[FIELD])
            if alert.get('uid') == graceid:
                millis = int(entry_id.decode().partition('-')[0])
                found.append((millis / 1000, alert))
        return found


class _Sections(logging.Handler):
    """Collects ligo.skymap's computational-section lines in this process."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _cpu(line):
    """User plus system seconds of a computational-section line."""
    _, user, sys_ = map(float, SECTION.search(line).groups())
    return user + sys_


def bare(coinc, psd, waveform, sections):
    """BAYESTAR alone in this process: wall seconds of the call and CPU
    seconds of its computational section."""
    from ligo.skymap.bayestar import localize
    from ligo.skymap.io.events.ligolw import LigoLWEventSource

    event, = LigoLWEventSource(io.BytesIO(coinc),
                               psd_file=io.BytesIO(psd)).values()
    start = time.perf_counter()
    localize(event, waveform=waveform)
    wall = time.perf_counter() - start
    return {'wall_s': wall, 'section_cpu_s': _cpu(sections.lines[-1])}


def task(system, coinc, psd, graceid):
    """The localize task through the openmp worker: wall seconds from
    sending to the result, and CPU seconds of its computational section."""
    from gwcelery.tasks import bayestar
    before = len(SECTION.findall(system.log('openmp')))
    start = time.perf_counter()
    data = bayestar.localize.delay(coinc, graceid, psd).get(timeout=1800)
    wall = time.perf_counter() - start
    lines = wait_for(lambda: SECTION.findall(system.log('openmp'))[before:],
                     timeout=10, what="the worker's log line")
    _, user, sys_ = map(float, lines[0])
    return {'wall_s': wall, 'section_cpu_s': user + sys_,
            'fits_bytes': len(data)}


def _first(alerts, alert_type, test=lambda data: True):
    for when, alert in alerts:
        data = alert.get('data') or {}
        if alert['alert_type'] == alert_type and test(data):
            return when
    return None


def pipeline(system, client, coinc, psd, timeout, product_timeout):
    """Upload like gstlal; the latencies of the pipeline's steps."""
    from gwcelery.tasks import em_bright, orchestrator, p_astro, skymaps
    graceid = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                  filecontents=coinc,
                                  search='AllSky').json()['graceid']
    client.write_log(graceid, 'PSD', filename='psd.xml.gz',
                     filecontents=psd, tag_name=['psd'])

    def ready():
        alerts = system.alerts(graceid)
        psd_at = _first(alerts, 'log',
                        lambda d: d.get('filename') == 'psd.xml.gz')
        label_at = _first(alerts, 'label_added', lambda d: d.get(
            'name') == orchestrator.SKYMAP_LABEL)
        return psd_at and label_at and (psd_at, label_at)

    psd_at, label_at = wait_for(ready, timeout=timeout,
                                what=f'SKYMAP_READY on {graceid}')
    names = skymaps.product_names(orchestrator.SKYMAP_FILENAME)
    expected = {
        'annotation': (label_at, lambda d: not d.get('filename') and
                       orchestrator.SKYMAP_FILENAME in d.get('comment', '')),
        'allsky_plot': (label_at,
                        lambda d: d.get('filename') == names['allsky']),
        'volume_rendering': (label_at,
                             lambda d: d.get('filename') == names['volume']),
        'em_bright': (None, lambda d: d.get('filename') == em_bright.FILENAME),
        'p_astro': (None, lambda d: d.get('filename') == p_astro.FILENAME),
    }

    def products():
        alerts = system.alerts(graceid)
        new_at = _first(alerts, 'new')
        found = {}
        for name, (since, test) in expected.items():
            when = _first(alerts, 'log', test)
            if when is not None:
                found[name] = when - (since or new_at)
        return found

    try:
        wait_for(lambda: len(products()) == len(expected),
                 timeout=product_timeout, interval=0.2,
                 what=f'the products of {graceid}')
    except TimeoutError:
        pass  # reported as missing
    return graceid, {'psd_to_skymap_ready_s': label_at - psd_at,
                     'followups_s': products()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--events', nargs='+',
                        default=['bns_hl_1', 'nsbh_hl_1', 'bbh_hl_1'],
                        help='first2years bank event names')
    parser.add_argument('--repeat', type=int, default=2,
                        help='bare/task pairs per event')
    parser.add_argument('--volume-dpi', type=int, default=100,
                        help='resolution of the volume rendering '
                        '(skymaps_volume_dpi)')
    parser.add_argument('--product-timeout', type=float, default=600.0,
                        help='seconds to wait for the products of an event')
    args = parse_args(parser, 'bayestar', QUICK)
    from gwcelery.data import first2years
    bank = {entry['name']: entry for entry in first2years.events()}
    unknown = [name for name in args.events if name not in bank]
    if unknown:
        parser.error(f'not bank events: {", ".join(unknown)}')
    run = Run('bayestar', args)

    sections = _Sections()
    logging.getLogger('BAYESTAR').addHandler(sections)
    logging.getLogger('BAYESTAR').setLevel(logging.INFO)
    system = System('bayestar')
    results = {'events': {}}
    try:
        system.start_all(args.volume_dpi)
        from ligo.gracedb.rest import GraceDb
        from ligo.skymap import omp

        from gwcelery import app
        waveform = app.conf.bayestar_waveform
        results['omp_threads'] = omp.num_threads
        client = GraceDb(service_url=system.gracedb_url, force_noauth=True)
        files = {name: (first2years.read(bank[name]['coinc']),
                         first2years.read(bank[name]['psd']))
                 for name in args.events}
        pairs = {name: [] for name in args.events}
        turn = 0
        for _ in range(args.repeat):
            for name in args.events:
                order = ('bare', 'task') if turn % 2 == 0 else ('task', 'bare')
                turn += 1
                pair = {'load_1min': os.getloadavg()[0]}
                for what in order:
                    pair[what] = (bare(*files[name], waveform, sections)
                                  if what == 'bare' else
                                  task(system, *files[name], f'bench-{name}'))
                pairs[name].append(pair)
                print(f'{name}: bare {pair["bare"]["wall_s"]:.2f} s, task '
                      f'{pair["task"]["wall_s"]:.2f} s; CPU '
                      f'{pair["bare"]["section_cpu_s"]:.2f} / '
                      f'{pair["task"]["section_cpu_s"]:.2f} s; load '
                      f'{pair["load_1min"]:.2f}', flush=True)
        for name in args.events:
            graceid, steps = pipeline(system, client, *files[name],
                                      timeout=1800,
                                      product_timeout=args.product_timeout)
            ratios = [p['task']['wall_s'] / p['bare']['wall_s']
                      for p in pairs[name]]
            cpu_ratios = [p['task']['section_cpu_s']
                          / p['bare']['section_cpu_s'] for p in pairs[name]]
            results['events'][name] = {
                'instruments': ','.join(bank[name]['instruments']),
                'bare_wall_s': statistics.median(
                    p['bare']['wall_s'] for p in pairs[name]),
                'task_wall_s': statistics.median(
                    p['task']['wall_s'] for p in pairs[name]),
                'task_over_bare': statistics.median(ratios),
                'task_over_bare_cpu': statistics.median(cpu_ratios),
                'pairs': {str(i): p for i, p in enumerate(pairs[name])},
                **steps}
            print(f'{name} ({graceid}): PSD → SKYMAP_READY '
                  f'{steps["psd_to_skymap_ready_s"]:.2f} s; follow-ups '
                  + ', '.join(f'{k} {v:.1f} s'
                              for k, v in steps['followups_s'].items()),
                  flush=True)
        client.close()
    finally:
        system.stop()
    rows = results['events'].values()
    results['task_over_bare'] = statistics.median(
        r['task_over_bare'] for r in rows)
    results['task_over_bare_cpu'] = statistics.median(
        r['task_over_bare_cpu'] for r in rows)
    results['psd_to_skymap_ready'] = latencies(
        [r['psd_to_skymap_ready_s'] for r in rows])
    results['task_wall'] = latencies([r['task_wall_s'] for r in rows])
    results['bare_wall'] = latencies([r['bare_wall_s'] for r in rows])
    print(f'median task/bare: wall {results["task_over_bare"]:.3f}, CPU '
          f'{results["task_over_bare_cpu"]:.3f}; PSD → SKYMAP_READY p50 '
          f'{results["psd_to_skymap_ready"]["p50_ms"] / 1e3:.2f} s')
    run.write(results)
    print(f'logs in {system.folder}')


if __name__ == '__main__':
    main()
