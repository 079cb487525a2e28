"""``gwcelery local``: start, stop and inspect the local deployment."""
import os
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
        os.execv(sys.executable, [
            sys.executable, '-m', 'supervisor.supervisord',
            '-n', '-c', str(config)])
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
