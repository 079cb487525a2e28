"""``gwcelery local``: start, stop and inspect the local deployment."""
import datetime
import json
import os
import signal
import subprocess
import sys

import click

from .. import deployment
from ..util.waiting import wait_for


def _supervisor(module, folder, *args, **kwargs):
    return subprocess.run(
        [sys.executable, '-m', f'supervisor.{module}',
         '-c', str(folder / 'supervisord.conf'), *args], **kwargs)


def _running(folder):
    pidfile = folder / 'supervisord.pid'
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def _all_running(folder):
    result = _supervisor('supervisorctl', folder, 'status',
                         capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return result.returncode == 0 and bool(lines) and all(
        ' RUNNING ' in f'{line} ' for line in lines)


def _next_mock_event(conf):
    """When the next mock event is due (a Unix time), or ``None`` if the
    stream is off: a period after the last one, or after now if there was
    none lately (beat starts its interval when it starts)."""
    if not conf.mock_events_enabled:
        return None
    import redis
    from ..tasks.first2years import LAST_KEY
    now = datetime.datetime.now().timestamp()
    period = float(conf.mock_events_period)
    try:
        client = redis.Redis.from_url(conf.broker_url, socket_timeout=2)
        try:
            last = json.loads(client.get(LAST_KEY) or 'null')
        finally:
            client.close()
    except (redis.RedisError, ValueError):
        last = None
    if last and now < last['time'] + period:
        return last['time'] + period
    return now + period


def where_to_look(conf, folder):
    """The lines that ``gwcelery local start --foreground`` prints once
    every process runs: the local GraceDb's pages, Flower, the logs and
    the next mock event."""
    gracedb = str(conf.gracedb_url)
    site = gracedb[:-len('api/')] if gracedb.endswith('/api/') else gracedb
    lines = ['Everything is running.',
             f'  Local GraceDb: {site} (superevents, events, sky maps)',
             f'  Flower:        http://{conf.flower_address}:'
             f'{conf.flower_port}/',
             f'  Logs:          {folder / "log"}']
    due = _next_mock_event(conf)
    if due is not None:
        when = datetime.datetime.fromtimestamp(due).strftime('%H:%M:%S')
        lines.append(f'  Mock events:   every {conf.mock_events_period:g} s, '
                     f'the next at about {when}')
    return lines


def _foreground(conf, folder, timeout=300):
    """Run supervisord in the foreground; say where to look once every
    process runs; return its exit status."""
    # Its own session: signals reach it once, through us.
    proc = subprocess.Popen(
        [sys.executable, '-m', 'supervisor.supervisord', '-n',
         '-c', str(folder / 'supervisord.conf')], start_new_session=True)

    def forward(signum, frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        wait_for(lambda: proc.poll() is not None or (
            (folder / 'supervisor.sock').exists() and _all_running(folder)),
            timeout=timeout, interval=1.0, what='every process to run')
    except TimeoutError:
        click.echo(f'Not every process runs after {timeout} s; see '
                   '"gwcelery local status" and the logs in '
                   f'{folder / "log"}.')
    else:
        if proc.poll() is None:
            click.echo('\n'.join(where_to_look(conf, folder)))
    return proc.wait()


@click.group('local')
@click.option('--state-dir', type=click.Path(file_okay=False),
              help='Folder for configuration, logs and data '
                   '(default: see the local_state_dir setting).')
@click.pass_context
def local(ctx, state_dir):
    """Run every gwcelery process on this machine under supervisor."""
    if state_dir:
        os.environ['GWCELERY_STATE_DIR'] = os.path.abspath(state_dir)
    ctx.meta['gwcelery.state_dir'] = deployment.state_dir(ctx.obj.app.conf)


@local.command()
@click.option('--foreground', is_flag=True,
              help='Stay in the foreground; Ctrl-C stops everything.')
@click.pass_context
def start(ctx, foreground):
    """Start the local deployment (Redis if needed, beat, workers, Flower)."""
    conf = ctx.obj.app.conf
    folder = ctx.meta['gwcelery.state_dir']
    if _running(folder):
        raise click.ClickException(
            f'The local deployment in {folder} is already running; '
            'see "gwcelery local status".')
    (folder / 'log').mkdir(parents=True, exist_ok=True)
    try:
        progs = deployment.programs(conf, folder)
    except RuntimeError as e:
        raise click.ClickException(str(e))
    config = folder / 'supervisord.conf'
    config.write_text(deployment.render_supervisor_conf(conf, folder, progs))
    click.echo(f'Local deployment in {folder}')
    click.echo(f'  processes: {", ".join(p.name for p in progs)}')
    click.echo(f'  logs:      {folder / "log"}')
    click.echo(f'  Flower:    http://{conf.flower_address}:{conf.flower_port}/')
    if foreground:
        click.echo('Press Ctrl-C to stop.')
        ctx.exit(_foreground(conf, folder))
    _supervisor('supervisord', folder, check=True)
    # Wait for supervisor's socket so that status works right away.
    try:
        wait_for((folder / 'supervisor.sock').exists, timeout=10,
                 interval=0.1, what='supervisord to start')
    except TimeoutError:
        raise click.ClickException(
            f'supervisord did not start; see {folder / "supervisord.log"}')
    click.echo('Started; "gwcelery local status" shows the processes.')


@local.command()
@click.pass_context
def stop(ctx):
    """Stop every process (workers finish their running tasks first)."""
    folder = ctx.meta['gwcelery.state_dir']
    if not _running(folder):
        click.echo(f'The local deployment in {folder} is not running.')
        return
    _supervisor('supervisorctl', folder, 'shutdown', check=False)
    try:
        wait_for(lambda: not _running(folder), timeout=120, interval=0.2,
                 what='supervisord to stop')
    except TimeoutError:
        raise click.ClickException('supervisord did not stop in 120 s')
    click.echo('Stopped.')


@local.command()
@click.pass_context
def status(ctx):
    """Show each process's state, pid and log file."""
    folder = ctx.meta['gwcelery.state_dir']
    if not _running(folder):
        click.echo(f'The local deployment in {folder} is not running.')
        ctx.exit(3)
    result = _supervisor('supervisorctl', folder, 'status',
                         capture_output=True, text=True)
    for line in result.stdout.splitlines():
        name = line.split()[0] if line.strip() else ''
        log = folder / 'log' / f'{name}.log'
        click.echo(f'{line}   log: {log}')
    # supervisorctl exits 3 when a process is not running.
    ctx.exit(result.returncode)
