"""The HTCondor submit file and ``gwcelery condor``.

No HTCondor pool can run here. The submit file is checked offline with the
bindings' own parser (``htcondor.Submit(text).jobs()`` expands and
validates a job as the schedd would receive it); the commands run against
:class:`FakeSchedd`, a stand-in for the schedd.
"""
import itertools
import shlex
import warnings

import pytest
from click.testing import CliRunner

from gwcelery import app, deployment
from gwcelery.tools import condor
from gwcelery.tools.nagios import task_queues

with warnings.catch_warnings():
    # No condor_config on this machine: the bindings say so on import.
    warnings.simplefilter('ignore', UserWarning)
    import classad
    import htcondor

LOCAL_UNIVERSE = 12


def submit_jobs():
    """``[(description text, job ClassAd)]`` for every job of the file."""
    texts = condor.split_jobs(condor.submit_file().read_text())
    return [(text, ad) for text in texts
            for ad in htcondor.Submit(text).jobs()]


def argv(ad):
    return shlex.split(ad['Arguments'])


def test_split_keeps_earlier_commands_and_one_queue_each():
    texts = condor.split_jobs(
        'universe = local\nname = a\nqueue\nname = b\\\n  c\nQueue 1\n')
    assert texts == ['universe = local\nname = a\nqueue\n',
                     'universe = local\nname = a\nname = b  c\nQueue 1\n']


def test_every_job_is_a_restarting_local_universe_job():
    jobs = submit_jobs()
    assert len(jobs) == len(condor.split_jobs(
        condor.submit_file().read_text())) > 1
    names = [ad['JobDescription'] for _, ad in jobs]
    assert len(set(names)) == len(names)
    for files in ('Out', 'Err', 'UserLog'):
        paths = [ad[files] for _, ad in jobs]
        assert len(set(paths)) == len(paths), files
    for _, ad in jobs:
        assert ad['JobUniverse'] == LOCAL_UNIVERSE
        assert ad['Cmd'] == '/usr/bin/env'
        assert ad['JobBatchName'] == condor.BATCH_NAME
        assert ad['OnExitRemove'] is False
        assert ad['Environment']  # getenv: the submitter's environment


def _celery_commands():
    from celery.bin.celery import celery

    from gwcelery.__main__ import _subcommands
    return set(celery.commands) | {c.name for c in _subcommands()}


def _deployment_workers():
    """``{queue: options}`` of the local deployment's workers, with the
    settings filled in, without the node name and log level."""
    workers = {}
    for program in deployment.PROGRAMS:
        if program.args[0] != 'worker':
            continue
        args = [a.format_map(app.conf) for a in program.args]
        queue = args[args.index('-Q') + 1]
        workers[queue] = _options(args)
    return workers


def _options(args):
    """Worker options as a set of (option, value), less -Q, -n and -l."""
    pairs = set()
    it = iter(args[1:])
    for option in it:
        value = next(it, None) if option.startswith('-') else None
        if option not in ('-Q', '-n', '-l'):
            pairs.add((option, value))
    return pairs


def test_jobs_run_real_commands_and_the_deployments_workers():
    commands = _celery_commands()
    workers = {}
    programs = set()
    for _, ad in submit_jobs():
        args = argv(ad)
        if args[0] == 'redis-server':
            programs.add('redis')
            continue
        assert args[0] == 'gwcelery', args
        assert args[1] in commands, args
        programs.add(args[1])
        if args[1] == 'worker':
            queue = args[args.index('-Q') + 1]
            assert queue not in workers, f'two workers for {queue}'
            workers[queue] = _options(args[1:])
            name = 'general' if queue == 'celery' else queue
            assert args[args.index('-n') + 1] == f'gwcelery-{name}@%h'
    # Every queue that a task is routed to has its worker, with the pool
    # and concurrency of the local deployment.
    assert workers == _deployment_workers()
    assert task_queues(app) <= set(workers)
    assert {'redis', 'beat', 'flower'} <= programs


class FakeSchedd:
    """A stand-in for ``htcondor.Schedd``: the one mock of these tests.

    It keeps job ClassAds in memory, selects them with real ClassAd
    evaluation of the constraint, expands submissions with the real
    ``htcondor.Submit.jobs()``, and records every call in :attr:`calls`.
    Removed jobs stay in the queue (status 3) for ``linger`` more queries,
    as a schedd takes a moment to let a removed job go.
    """

    def __init__(self, linger=2):
        self.jobs = []
        self.calls = []
        self.linger = linger
        self._clusters = itertools.count(100)
        self._leaving = {}

    def _select(self, constraint):
        expr = classad.ExprTree(constraint)
        return [ad for ad in self.jobs if expr.eval(ad) is True]

    def query(self, constraint='true', projection=()):
        self.calls.append(('query', constraint))
        for key in list(self._leaving):
            self._leaving[key] -= 1
            if self._leaving[key] < 0:
                del self._leaving[key]
                self.jobs = [ad for ad in self.jobs if id(ad) != key]
        return [classad.ClassAd({k: ad[k] for k in projection if k in ad})
                for ad in self._select(constraint)]

    def submit(self, description, count=0):
        self.calls.append(('submit', str(description)))
        cluster = next(self._clusters)
        for ad in description.jobs(clusterid=cluster):
            self.jobs.append(ad)

        class Result:
            def cluster(self):
                return cluster
        return Result()

    def act(self, action, constraint, reason=None):
        self.calls.append(('act', str(action), constraint, reason))
        selected = self._select(constraint)
        status = {htcondor.JobAction.Hold: 5, htcondor.JobAction.Release: 1,
                  htcondor.JobAction.Remove: 3}[action]
        for ad in selected:
            ad['JobStatus'] = status
            if status == 3:
                self._leaving[id(ad)] = self.linger
        return classad.ClassAd({'TotalSuccess': len(selected)})

    def edit(self, constraint, attribute, value):
        self.calls.append(('edit', constraint, attribute, value))
        for ad in self._select(constraint):
            ad[attribute] = value


@pytest.fixture
def schedd(monkeypatch):
    fake = FakeSchedd()
    monkeypatch.setattr(condor, '_schedd', lambda: fake)
    return fake


def run(folder, *args):
    result = CliRunner().invoke(condor.condor, ['--folder', str(folder),
                                                *args])
    return result


def test_submit_q_hold_release_rm(schedd, tmp_path):
    n = len(submit_jobs())
    result = run(tmp_path, 'submit')
    assert result.exit_code == 0, result.output
    assert result.output.count('Submitted') == n
    assert len(schedd.jobs) == n
    assert {ad['Iwd'] for ad in schedd.jobs} == {str(tmp_path)}

    result = run(tmp_path, 'q')
    assert result.output.count('idle') == n
    assert 'gwcelery-worker-openmp' in result.output

    # A second deployment in the same folder is refused; another folder's
    # jobs are other jobs.
    result = run(tmp_path, 'submit')
    assert result.exit_code != 0 and 'already queued' in result.output
    assert len(schedd.jobs) == n
    other = tmp_path / 'other'
    other.mkdir()
    assert run(other, 'submit').exit_code == 0
    assert len(schedd.jobs) == 2 * n

    assert run(tmp_path, 'hold').exit_code == 0
    held = [ad for ad in schedd.jobs if ad['JobStatus'] == 5]
    assert {ad['Iwd'] for ad in held} == {str(tmp_path)} and len(held) == n
    assert run(tmp_path, 'release').exit_code == 0
    assert not any(ad['JobStatus'] == 5 for ad in schedd.jobs)

    result = run(tmp_path, 'rm')
    assert result.exit_code == 0 and f'{n} job(s)' in result.output
    assert {ad['Iwd'] for ad in schedd.jobs
            if ad['JobStatus'] != 3} == {str(other)}
    actions = [c for c in schedd.calls if c[0] == 'act']
    assert [a[1] for a in actions] == ['Hold', 'Release', 'Remove']
    assert all(a[2] == condor.constraint(tmp_path) for a in actions)


def test_resubmit_waits_for_removal(schedd, tmp_path):
    assert run(tmp_path, 'submit').exit_code == 0
    first = {ad['ClusterId'] for ad in schedd.jobs}
    result = run(tmp_path, 'resubmit')
    assert result.exit_code == 0, result.output
    calls = [c[0] for c in schedd.calls]
    removed = calls.index('act')
    # Queried until the removed jobs had gone, then submitted again.
    waited = schedd.linger + 1
    assert calls[removed + 1:removed + 2 + waited] == ['query'] * waited + [
        'submit']
    assert not first & {ad['ClusterId'] for ad in schedd.jobs}


def test_resubmit_gives_up_when_jobs_stay(schedd, tmp_path):
    assert run(tmp_path, 'submit').exit_code == 0
    schedd.linger = 10 ** 6
    result = run(tmp_path, 'resubmit', '--timeout', '1.5')
    assert result.exit_code != 0 and 'still queued' in result.output
    assert [c[0] for c in schedd.calls].count('submit') == len(
        submit_jobs())


def test_no_schedd_is_a_clear_error(tmp_path):
    # The real bindings, with no pool on this machine.
    result = run(tmp_path, 'q')
    assert result.exit_code != 0
    assert 'No HTCondor schedd' in result.output
