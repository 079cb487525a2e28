#!/usr/bin/env python
"""The local deployment under SIGKILL: nothing lost, nothing sent twice.

Starts the local deployment (``gwcelery local start``: every process under
supervisor, Redis with its append-only file among them) on ports of its
own, with :mod:`benchmarks.chaos_conf`, and pygcn's client subscribed to
the broadcaster as a recipient of the notices. While a stream runs —
clusters of synthetic uploads from several pipelines (eligible for a
superevent, not for a notice), a Fermi GBM notice every few seconds through
the local GCN feed, and first2years bank candidates (coinc.xml and PSD, as
gstlal uploads them; localized for real) — it SIGKILLs, in turn, the whole
process group of every program but Flower and lets supervisor restart it.
A bank candidate is uploaded before the kills of the openmp worker (which
is killed while it localizes) and of the voevent worker.

At the end it checks, from GraceDb and from what the subscriber received:

* every event is in exactly one superevent, each cluster in one superevent
  of its own;
* every trigger is one External event;
* every bank candidate's superevent had exactly one first preliminary
  notice received, and no notice was received twice;
* no superevent has a label, a log message or a VOEvent twice;

and reports, for each kill, how long supervisor took to have the program
running again and how late the stream's items sent in the seconds after
the kill were, against the items sent before the first kill (the
baseline, same run). Results are printed and written as one JSON record
(:mod:`benchmarks.common`); the exit status is 1 if a check failed.
"""
import argparse
import collections
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts would shadow
# packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Run, answers, free_port, latencies, parse_args, wait_for)

CONF = 'benchmarks.chaos_conf'

#: Programs killed, in this order (Flower is nobody's dependency).
KILLS = ('worker-general', 'worker-superevent', 'worker-openmp',
         'worker-exttrig', 'worker-voevent', 'beat', 'localgracedb',
         'gcn-feed', 'redis')

#: Pipelines of the synthetic clusters.
PIPELINES = ('gstlal', 'pycbc', 'spiir', 'mbtaonline')

#: FAR of the synthetic events: eligible for a superevent (at most
#: superevent_far_threshold), far above the threshold of a notice.
SYNTHETIC_FAR = 1e-5

QUICK = {'rounds': 1, 'gap': 4.0, 'baseline': 12.0, 'settle_timeout': 240.0}


class Deployment:
    """``gwcelery local`` in a folder of its own, on free ports."""

    def __init__(self, visibility_timeout):
        self.folder = Path(tempfile.mkdtemp(prefix='gwcelery-chaos-'))
        self.ports = {name: free_port() for name in (
            'REDIS_PORT', 'GRACEDB_PORT', 'VOEVENT_PORT', 'FEED_PORT',
            'FLOWER_PORT')}
        self.env = {
            **os.environ, 'CELERY_CONFIG_MODULE': CONF,
            'GWCELERY_STATE_DIR': str(self.folder),
            'PYTHONPATH': os.pathsep.join(
                [str(ROOT)] + [p for p in os.environ.get(
                    'PYTHONPATH', '').split(os.pathsep) if p]),
            'GWCELERY_CHAOS_VISIBILITY_TIMEOUT': str(visibility_timeout),
            **{f'GWCELERY_CHAOS_{k}': str(v) for k, v in self.ports.items()}}
        # This process reads the same configuration (Redis, GraceDb).
        os.environ.update({k: v for k, v in self.env.items()
                           if k.startswith(('GWCELERY_', 'CELERY_'))})
        self.redis_url = f'redis://127.0.0.1:{self.ports["REDIS_PORT"]}/0'
        self.gracedb_url = \
            f'http://127.0.0.1:{self.ports["GRACEDB_PORT"]}/api/'

    def gwcelery(self, *args, check=True):
        return subprocess.run(
            [sys.executable, '-m', 'gwcelery', *args], env=self.env,
            cwd=ROOT, capture_output=True, text=True, check=check,
            timeout=180)

    def supervisorctl(self, *args):
        return subprocess.run(
            [sys.executable, '-m', 'supervisor.supervisorctl', '-c',
             str(self.folder / 'supervisord.conf'), *args],
            capture_output=True, text=True, timeout=60).stdout

    def pid(self, name):
        """The program's pid, 0 if it is not running."""
        try:
            return int(self.supervisorctl('pid', name).strip() or 0)
        except ValueError:
            return 0

    def running(self, name):
        return ' RUNNING ' in self.supervisorctl('status', name) + ' '

    def log(self, name):
        return (self.folder / 'log' / f'{name}.log').read_text(
            errors='replace')

    def start(self):
        self.gwcelery('local', 'start')
        wait_for(lambda: all(' RUNNING ' in line + ' ' for line in
                             self.supervisorctl('status').splitlines()
                             if line.strip()) and self.programs(),
                 timeout=180, interval=0.5, what='every program to run')
        wait_for(lambda: answers(self.gracedb_url), timeout=60,
                 what='the local GraceDb')

    def programs(self):
        return [line.split()[0] for line in
                self.supervisorctl('status').splitlines() if line.strip()]

    def kill(self, name):
        """SIGKILL the program's process group (a worker with its pool);
        return the pid killed."""
        pid = self.pid(name)
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pid

    def stop(self):
        self.gwcelery('local', 'stop', check=False)


class Subscriber:
    """pygcn's client subscribed to the broadcaster, in a thread: every
    notice received, with the time. Not the tests' ``PygcnClient``, which
    records into Redis: the Redis here is one of the programs killed."""

    def __init__(self, port):
        import gcn
        self.received = []
        self.lock = threading.Lock()
        quiet = logging.getLogger('chaos.pygcn')
        quiet.setLevel(logging.CRITICAL + 1)
        threading.Thread(target=gcn.listen, daemon=True, kwargs=dict(
            host='127.0.0.1', port=port, ivorn='ivo://gwcelery/chaos',
            handler=self._handle, max_reconnect_timeout=1,
            log=quiet)).start()

    def _handle(self, payload, root):
        with self.lock:
            self.received.append((root.get('ivorn'), time.time()))

    def ivorns(self):
        with self.lock:
            return list(self.received)


def _gracedb(url):
    from ligo.gracedb.rest import GraceDb
    return GraceDb(service_url=url, force_noauth=True)


def _persist(call, stop=None):
    """Call until it succeeds, as a pipeline or GCN would keep trying."""
    while True:
        try:
            return call()
        except Exception:
            if stop is not None and stop.is_set():
                raise
            time.sleep(0.2)


class Stream:
    """Uploads and notices sent by a thread, and a thread that watches for
    their outcome (an event's superevent, a trigger's External event)."""

    def __init__(self, deployment, cluster_period, notice_period, seed):
        self.deployment = deployment
        self.cluster_period = cluster_period
        self.notice_period = notice_period
        self.rng = random.Random(seed)
        self.stop_sending = threading.Event()
        self.stop_watching = threading.Event()
        self.lock = threading.Lock()
        #: graceid -> {'cluster', 'sent', 'seen', 'superevent'}
        self.events = {}
        #: trigger id -> {'sent', 'seen'}
        self.triggers = {}
        self.clusters = []
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._watch, daemon=True)]

    def start(self):
        """Send a first cluster and notice and look for them once, in the
        caller's thread, then start the threads that go on.

        Two threads that first import a module at the same moment can
        break its import (seen here: KeyError in astropy.units, and in
        xml.sax.expatreader, which sax imports at its first parse). The
        first round of each thread's work, run here, imports what the
        stream needs once, in one thread.
        """
        from gwcelery import mock_events
        from gwcelery.tasks.first2years import GRB_TEMPLATE
        from gwcelery.vtp import feed
        from importlib import resources
        from tests.fixtures.superevents import PIPELINES as NAMES, event_file
        self._make = dict(
            grb_notice=mock_events.grb_notice, enqueue=feed.enqueue,
            names=NAMES, event_file=event_file,
            template=resources.files('gwcelery.data').joinpath(
                GRB_TEMPLATE).read_bytes())
        self._gpstime = 1_300_000_000.0
        self._next_notice = time.monotonic()
        client = _gracedb(self.deployment.gracedb_url)
        self._send_round(client)
        self._watch_round(client)
        client.close()
        for thread in self.threads:
            thread.start()

    def _send(self):
        client = _gracedb(self.deployment.gracedb_url)
        while not self.stop_sending.wait(self.cluster_period):
            self._send_round(client)
        client.close()

    def _send_round(self, client):
        """Upload one cluster, and a GCN notice when one is due."""
        make = self._make
        self._gpstime += 1000.0
        gpstime = self._gpstime
        pipelines = self.rng.sample(PIPELINES, self.rng.randint(1, 3))
        cluster = []
        for pipeline in pipelines:
            group, name = make['names'][pipeline]
            filename, data = make['event_file'](
                pipeline, gpstime + self.rng.uniform(-0.01, 0.01),
                SYNTHETIC_FAR * self.rng.uniform(0.5, 1.0))
            graceid = _persist(lambda: client.create_event(
                group, name, filename, filecontents=data,
                search='AllSky').json()['graceid'])
            cluster.append(graceid)
            with self.lock:
                self.events[graceid] = {'cluster': len(self.clusters),
                                        'sent': time.time()}
        self.clusters.append(cluster)
        if time.monotonic() >= self._next_notice:
            self._next_notice += self.notice_period
            trigger = 100_000_000 + len(self.triggers)
            payload = make['grb_notice'](make['template'], gpstime + 0.5,
                                         trigger)
            _persist(lambda: make['enqueue'](self.deployment.redis_url,
                                             [payload]))
            with self.lock:
                self.triggers[trigger] = {'sent': time.time()}

    def _watch(self):
        client = _gracedb(self.deployment.gracedb_url)
        while not self.stop_watching.wait(0.25):
            self._watch_round(client)
        client.close()

    def _watch_round(self, client):
        """Note the events now in a superevent and the triggers now an
        External event."""
        with self.lock:
            events = [g for g, e in self.events.items() if 'seen' not in e]
            triggers = [t for t, e in self.triggers.items()
                        if 'seen' not in e]
        for graceid in events:
            try:
                sid = client.event(graceid).json().get('superevent')
            except Exception:
                break
            if sid:
                with self.lock:
                    self.events[graceid].update(seen=time.time(),
                                                superevent=sid)
        for trigger in triggers:
            try:
                found = list(client.events(query=_trigger_query(trigger)))
            except Exception:
                break
            if found:
                with self.lock:
                    self.triggers[trigger]['seen'] = time.time()

    def pending(self):
        with self.lock:
            return (sum('seen' not in e for e in self.events.values())
                    + sum('seen' not in e for e in self.triggers.values()))

    def unsettled(self):
        """Events without a superevent and triggers without an External
        event, so far."""
        with self.lock:
            return {'events': sorted(g for g, e in self.events.items()
                                     if 'seen' not in e),
                    'triggers': sorted(t for t, e in self.triggers.items()
                                       if 'seen' not in e)}

    def latencies_between(self, start, end):
        """Latencies (s) of the events and of the triggers sent between
        two times."""
        with self.lock:
            return {kind: [e['seen'] - e['sent'] for e in items.values()
                           if start <= e['sent'] < end and 'seen' in e]
                    for kind, items in (('event', self.events),
                                        ('trigger', self.triggers))}


def _trigger_query(trigger):
    return (f'group: External pipeline: Fermi '
            f'grbevent.trigger_id = "{trigger}"')


class Candidates:
    """first2years bank candidates uploaded as gstlal would (coinc.xml at
    the current time, then its PSD), and when their first preliminary
    notice reached the subscriber."""

    def __init__(self, deployment, subscriber):
        from gwcelery.data import first2years
        self.deployment = deployment
        self.subscriber = subscriber
        self.bank = [e for e in first2years.events()
                     if e['publishable'] and len(e['instruments']) == 2]
        self.uploaded = []

    def upload(self, why):
        from gwcelery.mock_events import SIDEREAL_DAY
        from gwcelery.tasks.first2years import gps_now, make_uploads
        cycle, index = divmod(len(self.uploaded), len(self.bank))
        entry = self.bank[index]
        # Moved to now by whole sidereal days, a bank event lands at the
        # same time each time: one more day back for each round through
        # the bank, so that it makes a superevent of its own. One pipeline:
        # no near copy, so no random numbers are drawn.
        [(_, coinc)], psd = make_uploads(
            entry, gps_now() - cycle * SIDEREAL_DAY, None, ['gstlal'])
        client = _gracedb(self.deployment.gracedb_url)
        sent = time.time()
        graceid = _persist(lambda: client.create_event(
            'CBC', 'gstlal', 'coinc.xml', filecontents=coinc,
            search='AllSky').json()['graceid'])
        _persist(lambda: client.write_log(graceid, 'Noise PSD',
                                          filename='psd.xml.gz',
                                          filecontents=psd, tag_name=['psd']))
        client.close()
        record = {'name': entry['name'], 'graceid': graceid, 'why': why,
                  'sent': sent}
        self.uploaded.append(record)
        return record

    def superevent(self, record, client):
        if 'superevent' not in record:
            sid = client.event(record['graceid']).json().get('superevent')
            if sid:
                record['superevent'] = sid
        return record.get('superevent')

    def notice_time(self, record):
        sid = record.get('superevent')
        times = [t for ivorn, t in self.subscriber.ivorns()
                 if sid and ivorn and ivorn.endswith(f'#{sid}-1-Preliminary')]
        return min(times) if times else None

    def latency(self, record):
        """Seconds from the upload to the first preliminary notice, or
        ``None`` if none came."""
        received = self.notice_time(record)
        return None if received is None else round(received - record['sent'],
                                                   3)

    def done(self, client):
        for record in self.uploaded:
            if not self.superevent(record, client) or \
                    self.notice_time(record) is None:
                return False
        return True


def _localizations(deployment):
    """How many localizations the openmp worker's log shows as received
    since the deployment started."""
    log = deployment.log('worker-openmp')
    return sum(1 for line in log.splitlines()
               if 'orchestrator.localize_event[' in line
               and line.endswith('] received'))


def _notice_underway(candidates, record, client):
    """Whether the candidate's first preliminary VOEvent exists."""
    sid = candidates.superevent(record, client)
    if not sid:
        return False
    try:
        return bool(client.voevents(sid).json()['voevents'])
    except Exception:
        return False


def kill_and_wait(deployment, name, timeout=300):
    """SIGKILL ``name``; return the seconds until supervisor runs it again
    (a new pid, RUNNING)."""
    killed_at = time.time()
    old = deployment.kill(name)
    wait_for(lambda: deployment.pid(name) not in (0, old)
             and deployment.running(name), timeout=timeout, interval=0.2,
             what=f'supervisor to restart {name}')
    return killed_at, time.time() - killed_at


def check(deployment, stream, candidates, subscriber):
    """The end-of-run checks: ``{name: {'ok': bool, ...}}``."""
    client = _gracedb(deployment.gracedb_url)
    for record in candidates.uploaded:
        candidates.superevent(record, client)
    checks = {}
    events = [e for e in client.events(query='')
              if e.get('group') != 'External']
    superevents = list(client.superevents(query=''))
    members = collections.Counter(
        g for s in superevents for g in s.get('gw_events', ()))
    owner = {g: s['superevent_id'] for s in superevents
             for g in s.get('gw_events', ())}
    orphans = [e['graceid'] for e in events if not e.get('superevent')]
    twice = [g for g, n in members.items() if n > 1]
    mismatched = [e['graceid'] for e in events if e.get('superevent')
                  and owner.get(e['graceid']) != e['superevent']]
    cluster_sids = [{stream.events[g].get('superevent') for g in cluster}
                    for cluster in stream.clusters if cluster]
    split = [i for i, sids in enumerate(cluster_sids) if len(sids) != 1]
    shared = [sid for sid, n in collections.Counter(
        sid for sids in cluster_sids for sid in sids).items() if n > 1]
    checks['every_event_in_one_superevent'] = {
        'ok': not (orphans or twice or mismatched or split or shared),
        'events': len(events), 'superevents': len(superevents),
        'without_superevent': orphans, 'in_two': twice,
        'member_mismatch': mismatched, 'clusters_split': split,
        'superevents_shared_by_clusters': shared}

    externals = list(client.events(query='group: External'))
    counts = {t: len(list(client.events(query=_trigger_query(t))))
              for t in stream.triggers}
    checks['every_trigger_one_external_event'] = {
        'ok': all(n == 1 for n in counts.values())
        and len(externals) == len(counts),
        'triggers': len(counts), 'external_events': len(externals),
        'not_one': {str(t): n for t, n in counts.items() if n != 1}}

    received = collections.Counter(ivorn for ivorn, _ in subscriber.ivorns())
    first = {r['superevent']: sum(
        n for ivorn, n in received.items()
        if ivorn and ivorn.endswith(f'#{r.get("superevent")}-1-Preliminary'))
        for r in candidates.uploaded if r.get('superevent')}
    publishable = {s['superevent_id'] for s in superevents} & set(first)
    candidate_sids = {r.get('superevent') for r in candidates.uploaded}
    stray = [ivorn for ivorn in received
             if ivorn and ivorn.split('#')[-1].rsplit('-', 2)[0]
             not in candidate_sids]
    checks['one_preliminary_notice_each'] = {
        'ok': len(publishable) == len(candidates.uploaded)
        and all(n == 1 for n in first.values())
        and all(n == 1 for n in received.values()) and not stray,
        'candidates': len(candidates.uploaded),
        'first_preliminary_received': first,
        'received_twice': [i for i, n in received.items() if n > 1],
        'notices_of_other_superevents': stray}

    duplicates = {}
    for s in superevents:
        sid = s['superevent_id']
        labels = collections.Counter(s.get('labels', ()))
        logs = collections.Counter(
            (entry.get('comment'), entry.get('filename'))
            for entry in client.logs(sid).json()['log'])
        voevents = collections.Counter(
            v.get('ivorn') for v in client.voevents(sid).json()['voevents'])
        found = [f'label {k}' for k, n in labels.items() if n > 1] + \
            [f'log {k[0]!r} {k[1]!r}' for k, n in logs.items() if n > 1] + \
            [f'voevent {k}' for k, n in voevents.items() if n > 1]
        if found:
            duplicates[sid] = found
    checks['nothing_twice'] = {'ok': not duplicates, 'duplicates': duplicates}
    client.close()
    return checks


def _reconciled(deployment):
    """Warnings of the reconciliation in the general worker's log: events
    that it had to hand back to the superevent manager."""
    return deployment.log('worker-general').count(
        'should be in a superevent but is not')


def _ready(deployment):
    from gwcelery.tasks import orchestrator, superevents
    import redis
    client = redis.Redis.from_url(deployment.redis_url)
    nodes = set(superevents.NODES) | set(orchestrator.SUPEREVENT_NODES)

    def subscribed():
        try:
            return all(client.xinfo_groups(f'lvalert:{n}') for n in nodes)
        except redis.RedisError:
            return False

    wait_for(subscribed, timeout=120, what='the LVAlert listener')
    wait_for(lambda: 'GCN feed: subscriber' in deployment.log('gcn-feed'),
             timeout=120, what='the GCN listener to reach the feed')
    wait_for(lambda: '(2 connected)' in deployment.log('worker-voevent'),
             timeout=120, what='the feed and pygcn to subscribe')
    wait_for(lambda: 'ready.' in deployment.log('worker-openmp'),
             timeout=120, what='the openmp worker')
    client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3,
                        help='times every program is killed')
    parser.add_argument('--gap', type=float, default=10.0,
                        help='seconds between a restart and the next kill')
    parser.add_argument('--baseline', type=float, default=20.0,
                        help='seconds of stream before the first kill')
    parser.add_argument('--cluster-period', type=float, default=0.5,
                        help='seconds between synthetic clusters')
    parser.add_argument('--notice-period', type=float, default=3.0,
                        help='seconds between GCN notices')
    parser.add_argument('--visibility-timeout', type=float, default=600.0,
                        help="Redis visibility timeout of the deployment "
                             "(when a killed worker's task comes back, "
                             "unless its queue's worker hands it back; "
                             "default: gwcelery's)")
    parser.add_argument('--settle-timeout', type=float, default=600.0,
                        help='seconds to wait for everything to settle')
    parser.add_argument('--seed', type=int, default=1)
    args = parse_args(parser, 'chaos', QUICK)
    run = Run('chaos', args)
    deployment = Deployment(args.visibility_timeout)
    print(f'deployment in {deployment.folder}', flush=True)
    results = {'kills': [], 'baseline': {}}
    try:
        deployment.start()
        subscriber = Subscriber(deployment.ports['VOEVENT_PORT'])
        _ready(deployment)
        stream = Stream(deployment, args.cluster_period, args.notice_period,
                        args.seed)
        candidates = Candidates(deployment, subscriber)
        client = _gracedb(deployment.gracedb_url)
        # The candidate first, in this thread alone (see Stream.start): it
        # imports what its upload needs before the stream's threads run.
        candidates.upload('baseline')
        started = time.time()
        stream.start()
        wait_for(lambda: time.time() > started + args.baseline
                 and candidates.done(client), timeout=args.settle_timeout,
                 interval=0.5, what='the baseline candidate\'s notice')
        first_kill = time.time()
        kills = []
        for round_ in range(args.rounds):
            for name in KILLS:
                record = None
                if name == 'worker-openmp':
                    before = _localizations(deployment)
                    record = candidates.upload(f'{name} killed while it '
                                               'localizes')
                    wait_for(lambda: _localizations(deployment) > before,
                             timeout=120, interval=0.1,
                             what='the localization to start')
                elif name == 'worker-voevent':
                    record = candidates.upload(f'{name} killed while its '
                                               'notice is prepared')
                    wait_for(lambda: _notice_underway(candidates, record,
                                                      client),
                             timeout=300, interval=0.05,
                             what='the VOEvent to be created')
                killed_at, back = kill_and_wait(deployment, name)
                kills.append({'program': name, 'round': round_,
                              'killed_at': killed_at, 'restarted_s': back,
                              'candidate': record})
                print(f'killed {name} (round {round_ + 1}); running again '
                      f'after {back:.1f} s', flush=True)
                # Not a wait for a condition: the stream runs on, so that
                # the next kill finds work under way.
                stream.stop_sending.wait(args.gap)
        stream.stop_sending.set()
        last_sent = time.time()
        try:
            wait_for(lambda: not stream.pending() and candidates.done(client),
                     timeout=args.settle_timeout, interval=0.5,
                     what='every event, trigger and notice to arrive')
        except TimeoutError:
            # The checks say what is missing.
            settled = None
            print(f'not settled after {args.settle_timeout:g} s: '
                  + json.dumps(stream.unsettled()), flush=True)
        else:
            settled = time.time()
        stream.stop_watching.set()
        checks = check(deployment, stream, candidates, subscriber)
        reconciled = _reconciled(deployment)
        client.close()
    finally:
        deployment.stop()

    base = stream.latencies_between(started, first_kill)
    results['baseline'] = {kind: latencies(v) for kind, v in base.items() if v}
    base_notice = [r for r in candidates.uploaded if r['why'] == 'baseline']
    results['baseline']['notice_s'] = candidates.latency(base_notice[0])
    ends = [k['killed_at'] for k in kills[1:]] + [last_sent]
    for kill, end in zip(kills, ends):
        window = stream.latencies_between(kill['killed_at'], end)
        row = {'program': kill['program'], 'round': kill['round'],
               'restarted_s': round(kill['restarted_s'], 3)}
        for kind, values in window.items():
            if values:
                row[f'{kind}_max_s'] = round(max(values), 3)
                row[f'{kind}_n'] = len(values)
        if kill['candidate']:
            row['notice_s'] = candidates.latency(kill['candidate'])
        results['kills'].append(row)
        print(f"{row['program']:18} restarted {row['restarted_s']:6.1f} s; "
              + ', '.join(f'{k} {v}' for k, v in row.items()
                          if k.endswith(('_max_s', 'notice_s'))), flush=True)
    results['settled_after_last_upload_s'] = (
        None if settled is None else round(settled - last_sent, 3))
    results['unsettled'] = stream.unsettled()
    results['reconciled_events'] = reconciled
    results['checks'] = checks
    results['all_checks_passed'] = all(c['ok'] for c in checks.values())
    results['counts'] = {'events': len(stream.events),
                         'clusters': len(stream.clusters),
                         'triggers': len(stream.triggers),
                         'candidates': len(candidates.uploaded)}
    print(f"baseline: event {results['baseline'].get('event')}, trigger "
          f"{results['baseline'].get('trigger')}, notice "
          f"{results['baseline']['notice_s']} s")
    for name, outcome in checks.items():
        print(f'{name}: {"ok" if outcome["ok"] else "FAILED"} '
              + json.dumps({k: v for k, v in outcome.items() if k != 'ok'}))
    print(f'reconciled events: {reconciled}; settled '
          f'{results["settled_after_last_upload_s"]} s after the last '
          f'upload; logs in {deployment.folder / "log"}')
    run.write(results)
    return 0 if results['all_checks_passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
