"""``gwcelery nagios``: the deployment's health, as a Nagios plugin says it.

The first line of output is the verdict, ``OK: …``, ``WARNING: …``,
``CRITICAL: …`` or ``UNKNOWN: …``; one line per check follows; the exit
status is 0, 1, 2 or 3 respectively (the `Nagios plugin conventions
<https://nagios-plugins.org/doc/guidelines.html>`_), so any Nagios-
compatible monitor (Icinga, Checkmk, …) can run it as it is.

The checks (:data:`CHECKS`), each on what the running system says, not on
the configuration alone:

broker
    Redis, the broker, answers.
queues
    Every queue that a registered task is routed to is consumed by some
    worker (``inspect active_queues``).
eternal tasks
    Every eternal task (the listeners) holds its lock, whose time to live
    is being renewed, and the holder is a task that a worker is running
    (``inspect active``).
lvalert
    The LVAlert listener is subscribed, and to exactly the nodes that
    handlers are registered for (its record in :mod:`gwcelery.status`).
gcn
    The GCN listener is connected to a GCN server (its record).
voevent
    Every subscriber of
    :data:`~gwcelery.conf.voevent_broadcaster_expected_subscribers` is
    connected to the VOEvent broadcaster (``inspect stats``).
gracedb
    GraceDb's API root answers within
    :data:`~gwcelery.conf.nagios_timeout`.
"""
import dataclasses
import enum

import click

__all__ = ('Status', 'Result', 'CHECKS', 'task_queues', 'run_checks',
           'nagios')


class Status(enum.IntEnum):
    """Nagios states, whose values are the exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclasses.dataclass
class Result:
    """The outcome of one check."""

    check: str
    status: Status
    message: str


def task_queues(app):
    """The queues that the application's tasks are routed to.

    Parameters
    ----------
    app : celery.Celery

    Returns
    -------
    set of str
    """
    app.loader.import_default_modules()
    default = app.conf.task_default_queue
    return {getattr(task, 'queue', None) or default
            for name, task in app.tasks.items()
            if not name.startswith('celery.')}


class _Context:
    """What the checks share: the app, and the workers' answers (asked
    once)."""

    def __init__(self, app, timeout):
        self.app = app
        self.conf = app.conf
        self.timeout = timeout
        self._answers = {}

    def inspect(self, method):
        """The workers' answers to an inspect command, by worker. The first
        call waits the whole timeout for whoever answers; later calls end
        as soon as that many workers have answered."""
        if 'ping' not in self._answers:
            self._answers['ping'] = self.app.control.inspect(
                timeout=self.timeout).ping() or {}
        if method not in self._answers:
            inspector = self.app.control.inspect(
                timeout=self.timeout,
                limit=len(self._answers['ping']) or None)
            self._answers[method] = getattr(inspector, method)() or {}
        return self._answers[method]


def check_broker(ctx):
    with ctx.app.connection_for_write() as conn:
        # Host and port only: the URL may hold a password.
        where = f'{conn.transport_cls}://{conn.hostname}:{conn.port}'
        try:
            conn.ensure_connection(max_retries=1, timeout=ctx.timeout)
        except Exception as e:
            return Status.CRITICAL, f'the broker {where} does not answer: {e}'
        return Status.OK, f'the broker {where} answers'


def check_queues(ctx):
    wanted = task_queues(ctx.app)
    consumed = {}
    for worker, queues in ctx.inspect('active_queues').items():
        for queue in queues or ():
            consumed.setdefault(queue.get('name'), []).append(worker)
    if not consumed:
        return Status.CRITICAL, 'no worker answers'
    missing = sorted(wanted - set(consumed))
    if missing:
        return Status.CRITICAL, ('no worker consumes the queue(s) '
                                 + ', '.join(missing))
    return Status.OK, ', '.join(
        f'{q} ({len(consumed[q])} worker(s))' for q in sorted(wanted))


def check_eternal(ctx):
    from ..eternal import eternal_tasks
    tasks = eternal_tasks(ctx.app)
    if not tasks:
        return Status.OK, 'no eternal tasks'
    running = {request.get('id'): worker
               for worker, requests in ctx.inspect('active').items()
               for request in requests or ()}
    redis = tasks[0].singleton_backend.redis
    ttl_ms = tasks[0]._lock_ttl_ms
    problems, fine = [], []
    for task in tasks:
        lock = task.generate_lock(task.name)
        holder, remaining = redis.get(lock), redis.pttl(lock)
        holder = holder.decode() if isinstance(holder, bytes) else holder
        if holder is None:
            problems.append(f'{task.name} is not running (no lock)')
        elif holder not in running:
            problems.append(f'{task.name} is not running (its lock is held '
                            f'by {holder}, which no worker runs)')
        elif remaining < 0 or remaining < ttl_ms / 3:
            # The holder renews it every third of its life.
            problems.append(f'{task.name} does not renew its lock '
                            f'({remaining} ms left)')
        else:
            fine.append(f'{task.name} on {running[holder]}')
    if problems:
        return Status.CRITICAL, '; '.join(problems)
    return Status.OK, 'running: ' + ', '.join(fine)


def check_lvalert(ctx):
    from .. import status
    from ..tasks import lvalert
    record = status.read('lvalert', ctx.conf)
    if record is None:
        return Status.CRITICAL, 'the LVAlert listener is not subscribed'
    wanted, have = set(lvalert.handler), set(record.get('nodes') or ())
    if wanted != have:
        parts = []
        if wanted - have:
            parts.append('not subscribed to ' + ', '.join(
                sorted(wanted - have)))
        if have - wanted:
            parts.append('subscribed to unregistered ' + ', '.join(
                sorted(have - wanted)))
        return Status.CRITICAL, 'the LVAlert listener is ' + '; '.join(parts)
    return Status.OK, (f'subscribed to {len(have)} node(s) on '
                       f'{record.get("server")}')


def check_gcn(ctx):
    from .. import status
    record = status.read('gcn', ctx.conf)
    if record is None:
        return Status.CRITICAL, 'the GCN listener is not connected'
    return Status.OK, f'the GCN listener is connected to {record["server"]}'


def check_voevent(ctx):
    from ..vtp.server import Whitelist
    expected = ctx.conf.voevent_broadcaster_expected_subscribers
    if isinstance(expected, str):
        expected = [expected]
    broadcasters = {worker: stats['voevent_broadcaster']
                    for worker, stats in ctx.inspect('stats').items()
                    if isinstance(stats, dict)
                    and 'voevent_broadcaster' in stats}
    if not broadcasters:
        return Status.CRITICAL, 'no worker runs the VOEvent broadcaster'
    peers = [peer['peer'].rpartition(':')[0].strip('[]')
             for info in broadcasters.values()
             for peer in info.get('peers', ())]
    missing = [entry for entry in expected
               if not any(host in Whitelist([entry]) for host in peers)]
    if missing:
        return Status.CRITICAL, ('expected VOEvent subscriber(s) not '
                                 'connected: ' + ', '.join(missing))
    return Status.OK, f'{len(peers)} VOEvent subscriber(s) connected'


def check_gracedb(ctx):
    import requests
    url = ctx.conf.gracedb_url
    try:
        response = requests.get(url, timeout=ctx.timeout,
                                headers={'Accept': 'application/json'})
    except requests.RequestException as e:
        return Status.CRITICAL, f'GraceDb {url} does not answer: {e}'
    if response.status_code != 200:
        return Status.CRITICAL, (f'GraceDb {url} answers HTTP '
                                 f'{response.status_code}')
    seconds = response.elapsed.total_seconds()
    return Status.OK, f'GraceDb {url} answers ({seconds:.2f} s)'


#: The checks, in the order they are run and shown.
CHECKS = (('broker', check_broker), ('queues', check_queues),
          ('eternal tasks', check_eternal), ('lvalert', check_lvalert),
          ('gcn', check_gcn), ('voevent', check_voevent),
          ('gracedb', check_gracedb))


def run_checks(app, timeout=None):
    """Run every check.

    Parameters
    ----------
    app : celery.Celery
    timeout : float, optional
        Seconds to wait for answers (default:
        :data:`~gwcelery.conf.nagios_timeout`).

    Returns
    -------
    list of Result
        One per check; a check that raised is UNKNOWN. If the broker does
        not answer, the checks that need it are not run (UNKNOWN).
    """
    ctx = _Context(app, app.conf.nagios_timeout if timeout is None
                   else timeout)
    results = []
    for name, check in CHECKS:
        if results and results[0].status != Status.OK and name != 'gracedb':
            results.append(Result(name, Status.UNKNOWN,
                                  'not checked: no broker'))
            continue
        try:
            status, message = check(ctx)
        except Exception as e:
            status, message = Status.UNKNOWN, f'{type(e).__name__}: {e}'
        results.append(Result(name, Status(status), message))
    return results


def summary(results):
    """``(overall status, first line)`` of a list of results. Checks not
    run for lack of a broker do not make a CRITICAL verdict UNKNOWN."""
    overall = max(r.status for r in results)
    if any(r.status == Status.CRITICAL for r in results):
        overall = Status.CRITICAL
    if overall == Status.OK:
        return overall, f'OK: {len(results)} checks passed'
    bad = [r for r in results if r.status == overall]
    return overall, f'{overall.name}: ' + '; '.join(
        f'{r.check}: {r.message}' for r in bad)


@click.command('nagios')
@click.option('--timeout', type=float, default=None,
              help='Seconds to wait for workers and GraceDb (default: the '
                   'nagios_timeout setting).')
@click.pass_context
def nagios(ctx, timeout):
    """Check the deployment's health (Nagios plugin: exit 0/1/2/3)."""
    try:
        results = run_checks(ctx.obj.app, timeout)
        overall, line = summary(results)
    except Exception as e:  # the plugin must always say something
        click.echo(f'UNKNOWN: {type(e).__name__}: {e}')
        ctx.exit(Status.UNKNOWN)
    click.echo(line)
    for r in results:
        click.echo(f'{r.status.name} {r.check}: {r.message}')
    ctx.exit(int(overall))
