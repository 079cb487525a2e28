"""Helpers shared by the benchmark scripts.

Every script takes ``--output PATH`` (default
``benchmarks/results/NAME.json``) and ``--quick`` (its smallest settings:
to check that it works, not to measure), and writes one JSON object::

    {"benchmark": "gcn",
     "started": "2026-01-01T12:00:00+00:00",
     "machine": {"cpus": 2, "load_average_start": [0.5, 0.4, 0.3],
                 "load_average_end": [1.9, 0.8, 0.4], "python": "3.11.7",
                 "celery": "5.7.0", "kombu": "5.7.0", "redis_server": "7.0.15",
                 "platform": "Linux-6.1.0-x86_64-with-glibc2.36"},
     "parameters": {"n": 500, "quick": false, ...},
     "results": {...}}

``results`` nests objects whose numeric leaves are the measurements;
``benchmarks/compare.py`` divides those of two runs. :func:`latencies` gives
every script the same keys for a set of latencies.
"""
import datetime
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from gwcelery.util.waiting import free_port, listening, wait_for

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results'
LAYOUT = ('benchmark', 'machine', 'parameters', 'results', 'started')
MACHINE = ('cpus', 'load_average_start', 'load_average_end', 'python',
           'celery', 'kombu')


def percentile(values, q):
    """The ``q`` quantile (0 to 1) of ``values``, nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latencies(seconds):
    """Summary of latencies given in seconds: count, p50, p99, mean and
    maximum in milliseconds."""
    ms = [1e3 * s for s in seconds]
    return {'n': len(ms), 'p50_ms': round(percentile(ms, 0.5), 3),
            'p99_ms': round(percentile(ms, 0.99), 3),
            'mean_ms': round(sum(ms) / len(ms), 3),
            'max_ms': round(max(ms), 3)}


def parse_args(parser, name, quick):
    """Add ``--output`` and ``--quick`` to ``parser`` and parse the command
    line. ``quick`` maps option destinations to the values that ``--quick``
    gives them; options on the command line still win."""
    parser.add_argument(
        '--output', type=Path, default=RESULTS / f'{name}.json',
        help='where to write the JSON record (default: %(default)s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='smallest settings, to check that the benchmark works: '
             + ', '.join(f'{k.replace("_", "-")} {v}'
                         for k, v in quick.items()))
    args = parser.parse_args()
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args()
    return args


def _redis_server_version():
    from gwcelery.deployment import find_redis_server
    binary = find_redis_server()
    if not binary:
        return None
    out = subprocess.run([binary, '--version'], capture_output=True,
                         text=True).stdout
    found = re.search(r'v=(\S+)', out)
    return found and found.group(1)


class Run:
    """The JSON record of one run of benchmark ``name`` with the parsed
    arguments ``args``; the clock and the load are read when it is made."""

    def __init__(self, name, args):
        self.name = name
        self.output = Path(args.output)
        self.parameters = {k: str(v) if isinstance(v, Path) else v
                           for k, v in vars(args).items() if k != 'output'}
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_start = os.getloadavg()

    def machine(self):
        import celery
        import kombu
        # Nothing that names the machine: records may be shared.
        return {'cpus': os.cpu_count(),
                'load_average_start': [round(x, 2) for x in self.load_start],
                'load_average_end': [round(x, 2) for x in os.getloadavg()],
                'python': platform.python_version(),
                'celery': celery.__version__, 'kombu': kombu.__version__,
                'redis_server': _redis_server_version(),
                'platform': platform.platform()}

    def write(self, results):
        """Write the record with ``results`` to ``--output``; return it."""
        record = {'benchmark': self.name,
                  'started': self.started.isoformat(timespec='seconds'),
                  'machine': self.machine(),
                  'parameters': self.parameters,
                  'results': results}
        check_layout(record)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(json.dumps(record, indent=2) + '\n')
        print(f'written to {self.output}')
        return record


def check_layout(record):
    """Raise ValueError unless ``record`` has the layout of a benchmark
    record."""
    if not isinstance(record, dict) or sorted(record) != sorted(LAYOUT):
        raise ValueError(f'expected the keys {", ".join(LAYOUT)}; got '
                         f'{sorted(record) if isinstance(record, dict) else record!r}')
    missing = [k for k in MACHINE if k not in record['machine']]
    if missing:
        raise ValueError(f'machine lacks {", ".join(missing)}')
    for key in ('parameters', 'results'):
        if not isinstance(record[key], dict):
            raise ValueError(f'{key} is not an object')
    datetime.datetime.fromisoformat(record['started'])
    if not dict(numbers(record['results'])):
        raise ValueError('results hold no number')


def numbers(tree, prefix=''):
    """``(path, value)`` of every numeric leaf of nested dicts, paths
    joined with dots; booleans are not numbers here."""
    for key, value in tree.items():
        path = f'{prefix}{key}'
        if isinstance(value, dict):
            yield from numbers(value, path + '.')
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path, value


def answers(url):
    """Whether an HTTP GET of ``url`` succeeds."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


class Processes:
    """Subprocesses of benchmark ``name``, each with a log file in a new
    temporary folder (:attr:`folder`, kept for reading after the run);
    :meth:`stop` ends them."""

    def __init__(self, name):
        self.folder = Path(tempfile.mkdtemp(prefix=f'gwcelery-bench-{name}-'))
        self.procs = {}

    def start(self, name, args, env=None):
        proc = subprocess.Popen(
            args, stdout=open(self.folder / f'{name}.log', 'w'),
            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            cwd=ROOT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def gwcelery(self, name, *args, env=None):
        """Start ``python -m gwcelery ARGS``."""
        return self.start(name, [sys.executable, '-m', 'gwcelery', *args],
                          env=env)

    def log(self, name):
        return (self.folder / f'{name}.log').read_text(errors='replace')

    def alive(self, name):
        """Raise RuntimeError, with the end of its log, if ``name`` has
        exited; for conditions of :func:`wait_for`."""
        if self.procs[name].poll() is not None:
            raise RuntimeError(f'{name} exited:\n{self.log(name)[-3000:]}')

    def stop(self, *names, timeout=30):
        """SIGTERM, then SIGKILL to the process group after ``timeout``."""
        procs = [self.procs[n] for n in names or reversed(self.procs)]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()

    def redis(self):
        """Start a private redis-server on a free port; its URL."""
        from gwcelery.deployment import find_redis_server
        port = free_port()
        self.start('redis', [find_redis_server(), '--port', str(port),
                             '--bind', '127.0.0.1', '--save', '',
                             '--appendonly', 'no', '--dir', str(self.folder)])
        wait_for(lambda: self.alive('redis') or listening('127.0.0.1', port),
                 timeout=20, what='redis-server')
        return f'redis://127.0.0.1:{port}/0'

    def gracedb_over_redis(self, config_module, **env):
        """Start a private redis-server and the local GraceDb publishing
        LVAlerts on it (the embedded transport), and point this process
        and every later child at them: ``CELERY_CONFIG_MODULE`` is
        ``config_module``, which reads the GraceDb and LVAlert URLs from
        ``GWCELERY_BENCH_GRACEDB_URL`` and ``GWCELERY_BENCH_LVALERT_URL``;
        ``env`` adds variables. Sets :attr:`redis_url`, :attr:`gracedb_url`
        and :attr:`client` (a :class:`redis.Redis`)."""
        import redis
        # The environment first: this process and every child read their
        # configuration from it when gwcelery is first imported.
        self.redis_url = self.redis()
        port = free_port()
        self.gracedb_url = f'http://127.0.0.1:{port}/api/'
        os.environ.update({
            'CELERY_CONFIG_MODULE': config_module,
            'CELERY_BROKER_URL': self.redis_url,
            'CELERY_RESULT_BACKEND': self.redis_url,
            'GWCELERY_BENCH_GRACEDB_URL': self.gracedb_url,
            'GWCELERY_BENCH_LVALERT_URL': self.redis_url,
            'PYTHONPATH': str(ROOT), **env})
        self.client = redis.Redis.from_url(self.redis_url)
        self.gwcelery('gracedb', 'localgracedb', '--port', str(port),
                      '--database',
                      f'sqlite:///{self.folder / "gracedb.sqlite"}',
                      '--lvalert-url', self.redis_url)
        wait_for(lambda: self.alive('gracedb') or answers(self.gracedb_url),
                 timeout=30, what='the local GraceDb')

    def wait_listening(self, nodes, timeout=90):
        """Wait until the LVAlert listener of the embedded transport (on
        the Redis of :attr:`client`) has subscribed to every node."""
        import redis

        def listening():
            try:
                return all(self.client.xinfo_groups(f'lvalert:{n}')
                           for n in nodes)
            except redis.ResponseError:  # a stream does not exist yet
                return False

        wait_for(listening, timeout=timeout, what='the LVAlert listener')

    def wait_openmp(self, name='openmp', timeout=90):
        """Wait until the openmp worker ``name`` has imported ligo.skymap in
        its pool process, so that no import is timed."""
        wait_for(lambda: self.alive(name) or 'ligo.skymap loaded'
                 in self.log(name), timeout=timeout, what='the openmp pool')

    def worker(self, app, name, queue, *options, env=None, loglevel='info',
               command=('-m', 'gwcelery')):
        """Start a worker of ``queue`` as ``bench-NAME@host`` (``gwcelery
        worker`` unless ``command`` names another application) and wait
        until it answers a ping through ``app``; its hostname."""
        hostname = f'bench-{name}@{socket.gethostname()}'
        self.start(name, [sys.executable, *command, 'worker', '-Q', queue,
                          '-n', hostname, '-l', loglevel, '--without-mingle',
                          '--without-gossip', *options], env=env)
        wait_for(lambda: self.alive(name) or any(
            hostname in reply
            for reply in app.control.ping([hostname], timeout=0.5)),
            timeout=90, what=f'worker {name}')
        return hostname


__all__ = ('ROOT', 'RESULTS', 'Processes', 'Run', 'answers', 'check_layout',
           'free_port', 'latencies', 'numbers', 'parse_args', 'percentile',
           'wait_for')
