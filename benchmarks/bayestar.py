#!/usr/bin/env python
"""BAYESTAR through gwcelery, against BAYESTAR alone, on bank events.

Starts a private redis-server, the local GraceDb (publishing LVAlerts on
the embedded Redis transport), a general worker with beat (the LVAlert
listener) and an openmp worker as the local deployment runs it (``-c 1
--prefetch-multiplier 1``), all as real subprocesses. Then, for each event
of ``--events`` (first2years bank names), one after the other so that no
two localizations share the cores:

* **bare**: ``ligo.skymap.bayestar.localize`` called in this process on the
  event read with ``LigoLWEventSource`` (the call alone is timed; reading
  the files and writing the FITS file are reported apart);
* **task**: the :func:`gwcelery.tasks.bayestar.localize` task through the
  openmp worker, from sending it with the coinc.xml and psd.xml.gz bytes
  to receiving the FITS bytes; and the task's own run time from the
  worker's log;
* **pipeline**: the event uploaded to the local GraceDb as gstlal does
  (coinc.xml, then psd.xml.gz, through the real ligo-gracedb client); the
  latency from the psd.xml.gz alert to the SKYMAP_READY alert, both read
  from the LVAlert stream (Redis stream entry ids are the server's
  millisecond clock), and the run time of each follow-up task (sky-map
  products, classification) that the workers ran, from their logs.

``bare`` and ``task`` alternate in order from one event to the next, to
spread the drift of a shared machine's load. Results are printed and, with
``--output PATH``, written as JSON ``{"benchmark", "machine",
"parameters", "results"}``.
"""
import argparse
import datetime
import io
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts would shadow
# packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import free_port, wait_for  # noqa: E402

CONF = 'benchmarks.bayestar_conf'
DEFAULT_EVENTS = ('bns_hl_1', 'nsbh_hl_1', 'bbh_hl_1')
SUCCEEDED = re.compile(
    r'^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]*\] '
    r'Task (\S+)\[([0-9a-f-]+)\] succeeded in ([0-9.]+)s', re.M)


class System:
    """The processes under test."""

    def __init__(self, folder):
        self.folder = folder
        self.procs = []
        self.host = socket.gethostname()

    def spawn(self, name, args):
        proc = subprocess.Popen(
            args, stdout=open(self.folder / f'{name}.log', 'w'),
            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name):
        return (self.folder / f'{name}.log').read_text(errors='replace')

    def start(self):
        # The environment first: this process and every child read their
        # configuration from it when gwcelery is first imported.
        redis_port, port = free_port(), free_port()
        self.redis_url = f'redis://127.0.0.1:{redis_port}/0'
        self.gracedb_url = f'http://127.0.0.1:{port}/api/'
        os.environ.update({
            'CELERY_CONFIG_MODULE': CONF,
            'CELERY_BROKER_URL': self.redis_url,
            'CELERY_RESULT_BACKEND': self.redis_url,
            'GWCELERY_BENCH_GRACEDB_URL': self.gracedb_url,
            'GWCELERY_BENCH_LVALERT_URL': self.redis_url,
            'PYTHONPATH': str(ROOT)})
        import redis

        from gwcelery.deployment import find_redis_server
        self.spawn('redis', [find_redis_server(), '--port', str(redis_port),
                             '--bind', '127.0.0.1', '--save', '',
                             '--appendonly', 'no', '--dir', str(self.folder)])
        self.redis = redis.Redis.from_url(self.redis_url)
        wait_for(self._redis_up, 20, 'redis-server')
        gwcelery = [sys.executable, '-m', 'gwcelery']
        self.spawn('gracedb', gwcelery + [
            'localgracedb', '--port', str(port), '--database',
            f'sqlite:///{self.folder / "gracedb.sqlite"}',
            '--lvalert-url', self.redis_url])
        common = ['-l', 'info', '--without-mingle', '--without-gossip']
        self.spawn('general', gwcelery + [
            'worker', '-Q', 'celery', '-c', '6',
            '-n', f'bench-general@{self.host}', *common])
        self.spawn('beat', gwcelery + [
            'beat', '-l', 'info', '-s', str(self.folder / 'beat-schedule')])
        self.spawn('openmp', gwcelery + [
            'worker', '-Q', 'openmp', '-c', '1', '--prefetch-multiplier',
            '1', '-n', f'bench-openmp@{self.host}', *common])
        wait_for(self._gracedb_up, 30, 'the local GraceDb')
        from gwcelery.tasks.orchestrator import CBC_NODES
        wait_for(lambda: self._listening(CBC_NODES), 90,
                 'the LVAlert listener')
        # The pool process has imported ligo.skymap: no import in the
        # first timing.
        wait_for(lambda: 'ligo.skymap loaded' in self.log('openmp'), 90,
                 'the openmp worker')

    def _redis_up(self):
        try:
            return self.redis.ping()
        except Exception:
            return False

    def _gracedb_up(self):
        try:
            with urllib.request.urlopen(self.gracedb_url, timeout=1):
                return True
        except OSError:
            return False

    def _listening(self, nodes):
        import redis
        try:
            return all(self.redis.xinfo_groups(f'lvalert:{n}') for n in nodes)
        except redis.ResponseError:
            return False

    def succeeded(self, name):
        """``[(log time, task name, task id, run time)]`` from a log."""
        return [(datetime.datetime.strptime(
                    stamp, '%Y-%m-%d %H:%M:%S,%f').timestamp(),
                 task, task_id, float(seconds))
                for stamp, task, task_id, seconds in SUCCEEDED.findall(
                    self.log(name))]

    def alerts(self, node):
        """``[(server time, alert)]`` of a node's LVAlert stream."""
        from gwcelery.lvalert.redis_streams import FIELD, stream_key
        found = []
        for entry_id, fields in self.redis.xrange(stream_key(node)):
            millis = int(entry_id.decode().partition('-')[0])
            found.append((millis / 1000, json.loads(fields[FIELD])))
        return found

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bare(coinc, psd, waveform):
    """BAYESTAR alone, in this process: seconds to read, localize, write."""
    from ligo.skymap.bayestar import localize
    from ligo.skymap.io import fits
    from ligo.skymap.io.events.ligolw import LigoLWEventSource

    start = time.perf_counter()
    event, = LigoLWEventSource(io.BytesIO(coinc),
                               psd_file=io.BytesIO(psd)).values()
    read = time.perf_counter()
    skymap = localize(event, waveform=waveform)
    localized = time.perf_counter()
    fits.write_sky_map(io.BytesIO(), skymap, nest=True)
    return {'read_s': read - start, 'localize_s': localized - read,
            'write_s': time.perf_counter() - localized}


def task(system, coinc, psd, graceid):
    """The localize task through the openmp worker."""
    from gwcelery.tasks import bayestar
    start = time.perf_counter()
    result = bayestar.localize.delay(coinc, graceid, psd)
    data = result.get(timeout=1800)
    wall = time.perf_counter() - start
    wait_for(lambda: any(task_id == result.id for _, _, task_id, _
                         in system.succeeded('openmp')), 10, 'the worker log')
    run = next(seconds for _, _, task_id, seconds in system.succeeded('openmp')
               if task_id == result.id)
    return {'wall_s': wall, 'worker_run_s': run, 'fits_bytes': len(data)}


def pipeline(system, client, coinc, psd, timeout):
    """Upload like gstlal; latency from the PSD alert to SKYMAP_READY."""
    from gwcelery.tasks import orchestrator
    graceid = client.create_event('CBC', 'gstlal', 'coinc.xml',
                                  filecontents=coinc,
                                  search='AllSky').json()['graceid']
    client.write_log(graceid, 'PSD', filename='psd.xml.gz',
                     filecontents=psd, tag_name=['psd'])

    def times():
        psd_at = label_at = None
        for when, alert in system.alerts('cbc_gstlal'):
            if alert.get('uid') != graceid:
                continue
            data = alert.get('data') or {}
            if alert['alert_type'] == 'log' and \
                    data.get('filename') == 'psd.xml.gz':
                psd_at = psd_at or when
            if alert['alert_type'] == 'label_added' and \
                    data.get('name') == orchestrator.SKYMAP_LABEL:
                label_at = label_at or when
        return (psd_at, label_at) if psd_at and label_at else None

    psd_at, label_at = wait_for_value(times, timeout, 'SKYMAP_READY')
    return graceid, {'psd_to_skymap_ready_s': label_at - psd_at}


def wait_for_value(condition, timeout, what):
    """Like :func:`wait_for`, returning the condition's value."""
    found = []
    wait_for(lambda: found.append(condition()) or found[-1], timeout, what)
    return found[-1]


def followups(system, since):
    """Run time of each follow-up task that finished after ``since``."""
    from gwcelery.tasks import orchestrator
    names = {sig.task for sig in
             orchestrator.skymap_products('x.fits', 'G0').tasks}
    names |= {task.name for task in orchestrator.CLASSIFIERS}
    found = {}
    for name in ('general', 'openmp'):
        for when, task_name, _, seconds in system.succeeded(name):
            if task_name in names and when >= since:
                found.setdefault(task_name, []).append(seconds)
    return found


def machine():
    model = ''
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                model = line.partition(':')[2].strip()
                break
    except OSError:
        pass
    import ligo.skymap
    return {'cpus': os.cpu_count(), 'cpu_model': model,
            'python': platform.python_version(),
            'platform': platform.platform(),
            'ligo.skymap': ligo.skymap.__version__}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--events', nargs='+', default=list(DEFAULT_EVENTS),
                        help='first2years bank event names (default: '
                        '%(default)s)')
    parser.add_argument('--followup-wait', type=float, default=60.0,
                        help='seconds to let follow-up tasks finish after '
                        'the last sky map (default: %(default)s)')
    parser.add_argument('--output', type=Path,
                        help='write the results as JSON here')
    args = parser.parse_args()

    from gwcelery.data import first2years
    bank = {entry['name']: entry for entry in first2years.events()}
    unknown = [name for name in args.events if name not in bank]
    if unknown:
        parser.error(f'not bank events: {", ".join(unknown)}')

    folder = Path(tempfile.mkdtemp(prefix='gwcelery-bench-bayestar-'))
    system = System(folder)
    load = {'before': os.getloadavg()}
    results = {'events': []}
    try:
        system.start()
        from ligo.gracedb.rest import GraceDb
        from ligo.skymap import omp

        from gwcelery import app
        waveform = app.conf.bayestar_waveform
        client = GraceDb(service_url=system.gracedb_url, force_noauth=True)
        started = time.time()
        for i, name in enumerate(args.events):
            entry = bank[name]
            coinc = first2years.read(entry['coinc'])
            psd = first2years.read(entry['psd'])
            row = {'event': name, 'instruments': entry['instruments'],
                   'load_1min_before': os.getloadavg()[0]}
            order = ('bare', 'task') if i % 2 == 0 else ('task', 'bare')
            for what in order:
                if what == 'bare':
                    row['bare'] = bare(coinc, psd, waveform)
                else:
                    row['task'] = task(system, coinc, psd, f'bench-{name}')
            row['task_over_bare'] = (row['task']['wall_s']
                                     / row['bare']['localize_s'])
            graceid, row['pipeline'] = pipeline(system, client, coinc, psd,
                                                timeout=1800)
            row['graceid'] = graceid
            row['load_1min_after'] = os.getloadavg()[0]
            results['events'].append(row)
            print(f'{name}: bare {row["bare"]["localize_s"]:.2f} s, task '
                  f'{row["task"]["wall_s"]:.2f} s (ratio '
                  f'{row["task_over_bare"]:.3f}), PSD → SKYMAP_READY '
                  f'{row["pipeline"]["psd_to_skymap_ready_s"]:.2f} s, load '
                  f'{row["load_1min_before"]:.2f} → '
                  f'{row["load_1min_after"]:.2f}', flush=True)
        time.sleep(args.followup_wait)  # the products run off the path
        results['followups_s'] = followups(system, started)
        ratios = [row['task_over_bare'] for row in results['events']]
        results['task_over_bare_median'] = statistics.median(ratios)
        results['psd_to_skymap_ready_median_s'] = statistics.median(
            row['pipeline']['psd_to_skymap_ready_s']
            for row in results['events'])
        client.close()
        threads = omp.num_threads
    finally:
        system.stop()
    load['after'] = os.getloadavg()
    report = {
        'benchmark': 'bayestar',
        'machine': {**machine(), 'load_average': load},
        'parameters': {'events': args.events, 'waveform': waveform,
                       'omp_threads': threads,
                       'followup_wait_s': args.followup_wait},
        'results': results,
    }
    print(f'median task/bare: {results["task_over_bare_median"]:.3f}; '
          f'median PSD → SKYMAP_READY: '
          f'{results["psd_to_skymap_ready_median_s"]:.2f} s')
    for task_name, seconds in sorted(results['followups_s'].items()):
        print(f'  {task_name}: {", ".join(f"{s:.2f}" for s in seconds)} s')
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + '\n')
        print(f'written to {args.output}')


if __name__ == '__main__':
    main()
