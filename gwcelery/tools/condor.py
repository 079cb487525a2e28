"""``gwcelery condor``: the deployment as HTCondor jobs.

The submit file (:func:`submit_file`, ``etc/gwcelery.sub``) describes one
local-universe job per process. These commands act on the jobs of the
current folder only: those whose ``JobBatchName`` is ``gwcelery`` and whose
``Iwd`` (initial working directory) is this folder (:func:`constraint`), so
deployments in different folders of one submit host leave each other
alone, and ``submit`` refuses to start a second deployment in a folder
that has one.

They use the HTCondor Python bindings (``htcondor``, the ``condor`` extra).
HTCondor's submit language expands a description only up to its first
``queue`` statement, so the file is submitted job by job
(:func:`split_jobs`).
"""
import os
import sys
import time
from pathlib import Path

import click

__all__ = ('BATCH_NAME', 'submit_file', 'split_jobs', 'constraint', 'condor')

#: ``JobBatchName`` of every job of the submit file.
BATCH_NAME = 'gwcelery'

#: Attributes that ``gwcelery condor q`` shows.
_PROJECTION = ['ClusterId', 'ProcId', 'JobDescription', 'JobStatus',
               'EnteredCurrentStatus', 'HoldReason', 'Iwd']

#: HTCondor's JobStatus codes.
_STATUS = {1: 'idle', 2: 'running', 3: 'removed', 4: 'completed',
           5: 'held', 6: 'transferring', 7: 'suspended'}


def submit_file():
    """Path of the submit file: where pip installed it
    (``<prefix>/etc/gwcelery.sub``), else beside the source tree of an
    editable install.

    Raises
    ------
    FileNotFoundError
        If it is in neither place.
    """
    installed = Path(sys.prefix) / 'etc' / 'gwcelery.sub'
    source = Path(__file__).resolve().parents[2] / 'etc' / 'gwcelery.sub'
    for path in (installed, source):
        if path.is_file():
            return path
    raise FileNotFoundError(f'gwcelery.sub is neither in {installed.parent} '
                            f'nor in {source.parent}')


def _logical_lines(text):
    """Lines of a submit description, continuation lines joined."""
    pending = ''
    for line in text.splitlines():
        if line.endswith('\\'):
            pending += line[:-1]
            continue
        yield pending + line
        pending = ''
    if pending:
        yield pending


def _is_queue(line):
    words = line.split(None, 1)
    return bool(words) and words[0].lower() == 'queue'


def split_jobs(text):
    """Cut a submit description with several ``queue`` statements into
    one description per statement.

    Each piece holds every command that precedes its ``queue`` statement
    (earlier jobs' included, as ``condor_submit`` would have them in force)
    and that statement, so that it expands to the same job.

    Parameters
    ----------
    text : str
        The submit description.

    Returns
    -------
    list of str
    """
    commands = []
    jobs = []
    for line in _logical_lines(text):
        if _is_queue(line):
            jobs.append('\n'.join(commands + [line]) + '\n')
        else:
            commands.append(line)
    return jobs


def constraint(folder):
    """The ClassAd expression that selects the deployment's jobs in folder.

    Parameters
    ----------
    folder : str or os.PathLike
        The deployment's folder.

    Returns
    -------
    str
    """
    import classad
    return (f'JobBatchName == {classad.quote(BATCH_NAME)} && '
            f'Iwd == {classad.quote(os.fspath(folder))}')


def _schedd():
    """The local schedd (tests replace this function with a stand-in)."""
    import htcondor
    return htcondor.Schedd()


class _Jobs:
    """The deployment's jobs in one folder, on one schedd."""

    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.constraint = constraint(self.folder)
        try:
            self.schedd = _schedd()
        except ImportError:
            raise click.ClickException(
                'The HTCondor Python bindings are not installed: '
                "pip install 'gwcelery[condor]'")
        except Exception as e:  # htcondor.HTCondorLocateError and kin
            raise click.ClickException(f'No HTCondor schedd to talk to: {e}')

    def query(self):
        return list(self.schedd.query(constraint=self.constraint,
                                      projection=_PROJECTION))

    def act(self, action_name, reason=None):
        import htcondor
        action = getattr(htcondor.JobAction, action_name)
        return self.schedd.act(action, self.constraint, reason=reason)

    def submit(self, path):
        import htcondor
        clusters = []
        for text in split_jobs(path.read_text()):
            description = htcondor.Submit(text)
            description['initialdir'] = str(self.folder)
            result = self.schedd.submit(description)
            clusters.append((description.get('description', '?'),
                             result.cluster()))
        return clusters


def _describe(ad):
    status = _STATUS.get(ad.get('JobStatus'), str(ad.get('JobStatus')))
    since = ad.get('EnteredCurrentStatus')
    when = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since)) \
        if since else ''
    line = (f'{ad.get("ClusterId")}.{ad.get("ProcId")}  '
            f'{ad.get("JobDescription", "?"):<28} {status:<10} {when}')
    if ad.get('HoldReason') and status == 'held':
        line += f'  ({ad["HoldReason"]})'
    return line


@click.group('condor')
@click.option('--folder', type=click.Path(file_okay=False, exists=True),
              default='.', show_default=True,
              help='The deployment\'s folder: where its jobs run and '
                   'write their files.')
@click.pass_context
def condor(ctx, folder):
    """Run the deployment as HTCondor jobs (etc/gwcelery.sub)."""
    ctx.meta['gwcelery.condor.folder'] = folder


def _jobs(ctx):
    return _Jobs(ctx.meta['gwcelery.condor.folder'])


def _submit(jobs):
    try:
        path = submit_file()
    except FileNotFoundError as e:
        raise click.ClickException(str(e))
    for name, cluster in jobs.submit(path):
        click.echo(f'Submitted {name} as cluster {cluster}')


@condor.command()
@click.pass_context
def submit(ctx):
    """Submit every job, unless the folder already has a deployment."""
    jobs = _jobs(ctx)
    existing = jobs.query()
    if existing:
        raise click.ClickException(
            f'{len(existing)} gwcelery job(s) are already queued in '
            f'{jobs.folder}; see "gwcelery condor q", and remove them with '
            '"gwcelery condor rm" (or use "gwcelery condor resubmit").')
    _submit(jobs)


@condor.command()
@click.option('--timeout', type=float, default=120.0, show_default=True,
              help='Seconds to wait for the old jobs to leave the queue.')
@click.pass_context
def resubmit(ctx, timeout):
    """Remove the folder's jobs, wait until they are gone, submit again."""
    from ..util.waiting import wait_for

    jobs = _jobs(ctx)
    if jobs.query():
        jobs.act('Remove', reason='gwcelery condor resubmit')
        try:
            wait_for(lambda: not jobs.query(), timeout=timeout, interval=1.0,
                     what='the old jobs to leave the queue')
        except TimeoutError:
            raise click.ClickException(
                f'The old jobs are still queued after {timeout:g} s; nothing '
                'was submitted (see "gwcelery condor q").')
    _submit(jobs)


def _action(name, verb, help_text):
    @click.pass_context
    def command(ctx):
        jobs = _jobs(ctx)
        if not jobs.query():
            click.echo(f'No gwcelery jobs in {jobs.folder}.')
            return
        result = jobs.act(name, reason=f'gwcelery condor {verb}')
        done = result.get('TotalSuccess', '?') if result is not None else '?'
        click.echo(f'{name}: {done} job(s)')
    command.__doc__ = help_text
    return condor.command(verb)(command)


_action('Remove', 'rm', 'Remove every job of the folder\'s deployment.')
_action('Hold', 'hold', 'Hold every job (stops the processes, keeps the '
        'jobs queued).')
_action('Release', 'release', 'Release held jobs (starts them again).')


@condor.command()
@click.pass_context
def q(ctx):
    """List the folder's jobs and their states."""
    jobs = _jobs(ctx)
    ads = sorted(jobs.query(), key=lambda ad: (ad.get('ClusterId'),
                                               ad.get('ProcId')))
    if not ads:
        click.echo(f'No gwcelery jobs in {jobs.folder}.')
        return
    for ad in ads:
        click.echo(_describe(ad))
