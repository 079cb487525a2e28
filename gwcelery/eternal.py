"""Eternal tasks: listeners that run exactly once across a deployment.

Built on celery-eternal: beat (re)sends each eternal task every
:data:`~gwcelery.conf.eternal_resend_interval` seconds, celery-singleton's
Redis lock keeps beat from queueing a second copy while one exists, and a
warm shutdown of the worker aborts the running copy so that another worker
takes over.

celery-singleton's lock never expires, so a worker that is killed (SIGKILL,
out of memory, power cut) would hold it forever and the listener would never
run again. Here the lock has a time to live
(:data:`~gwcelery.conf.eternal_lock_ttl`) and the running task renews it
from a background thread. The lock is also checked where the task starts,
not only where it is sent: a copy whose lock belongs to another task id
exits at once, so a message that sat in a queue while another copy started
never runs beside it. If the running copy ever loses its lock (its renewals
could not reach Redis for a whole time to live), it stops itself, because
another copy may be starting.

A lock whose holder was killed would still keep the task down for up to a
time to live. So the running copy also records, beside its lock, which
process holds it (host, pid and the process's start time), and every worker
that starts frees the locks held by processes of its own host that no longer
exist (:func:`free_locks_of_dead_holders`): a worker restarted by its
supervisor after a SIGKILL gets its listeners back as soon as it is up.
"""
import functools
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import billiard
from celery import bootsteps, signals
from celery.contrib.abortable import AbortableAsyncResult
from celery_eternal import EternalTask as _CeleryEternalTask
from celery_singleton.backends.redis import RedisBackend
from redis.exceptions import RedisError

__all__ = ('EternalTask', 'EternalProcessTask', 'HOLDER_PREFIX',
           'eternal_tasks', 'free_locks_of_dead_holders')

# A plain logger, not Celery's task logger: the messages name the task and
# its id themselves, and some are logged by the worker outside any task.
log = logging.getLogger(__name__)

# Lock backends by Redis URL, shared by the eternal tasks of a process.
_lock_backends = {}

#: Prefix of the Redis key, beside each lock, that records which process
#: holds it (see :func:`free_locks_of_dead_holders`).
HOLDER_PREFIX = 'gwcelery:eternal-holder:'

# KEYS: the lock, its holder record. Take the lock if it is free or already
# ours, give it a time to live, and record who holds it.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
    return 1
end
return 0
"""

# Extend the lock's life (and its record's) only while we still hold it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Delete the lock only if it is the given task's: never someone else's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[2])
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _AbortEternalTasks(bootsteps.StartStopStep):
    """Worker step: on warm shutdown, ask the eternal tasks to stop.

    It stops before the pool, so the pool's wait for running tasks ends once
    the eternal tasks notice the abort. Unlike celery-eternal's own step it
    leaves ordinary tasks alone.

    The request to stop goes through the result backend (Redis). A worker
    often shuts down *because* Redis went away (Celery gives up on a
    consumer that lost its broker in the middle of some operations, with
    "Unrecoverable error"), and an eternal task never ends by itself: if the
    request could not be made, the pool would wait for it forever and the
    worker would never exit, so that no supervisor would restart it. So the
    request is tried again for :data:`~gwcelery.conf.eternal_lock_ttl`
    seconds (Redis that restarts is back within them), and the pool
    process of a task that still could not be asked is killed (SIGKILL:
    a pool process that supervises a child, as
    :class:`EternalProcessTask` does, outlives SIGTERM; the child dies with
    it). Celery's pool can then block reading what a killed process left
    half-written in its result pipe, so a worker that had to kill one
    exits at once if it is still shutting down :attr:`GRACE` seconds
    later.
    """

    requires = {'celery.worker.components:Pool'}

    #: Seconds between two attempts to ask a task to stop.
    RETRY_INTERVAL = 0.5

    #: Seconds the rest of the shutdown may take once a pool process had to
    #: be killed, before the worker exits at once: Celery's prefork pool
    #: can block for ever reading what a killed process left half-written
    #: in its result pipe.
    GRACE = 30.0

    def stop(self, worker):
        deadline = time.monotonic() + float(worker.app.conf.eternal_lock_ttl)
        killed = False
        for request in list(worker.state.active_requests):
            if isinstance(request.task, EternalTask):
                log.info('Asking eternal task %s[%s] to stop',
                         request.task.name, request.task_id)
                killed |= not self._abort(worker, request, deadline)
        if killed:
            threading.Thread(target=self._exit_after, args=(self.GRACE,),
                             name='shutdown-deadline', daemon=True).start()

    @staticmethod
    def _exit_after(seconds):
        time.sleep(seconds)
        # Still here: the pool's shutdown is stuck. Exiting lets the
        # process supervisor start a fresh worker; tasks acknowledged late
        # come back as after any kill.
        log.critical('Worker still shutting down %.0f s after killing the '
                     'pool process of an eternal task; exiting now', seconds)
        logging.shutdown()
        os._exit(1)

    def _abort(self, worker, request, deadline):
        warned = False
        while True:
            try:
                AbortableAsyncResult(
                    request.task_id, app=worker.app).abort()
                return True
            except Exception as e:  # the backend's errors are its own
                if time.monotonic() >= deadline:
                    log.error('Could not ask eternal task %s[%s] to stop '
                              '(%s: %s); killing its pool process',
                              request.task.name, request.task_id,
                              type(e).__name__, e)
                    self._terminate(worker, request)
                    return False
                if not warned:
                    log.warning('Could not ask eternal task %s[%s] to stop '
                                '(%s: %s); trying again', request.task.name,
                                request.task_id, type(e).__name__, e)
                    warned = True
                time.sleep(self.RETRY_INTERVAL)

    @staticmethod
    def _terminate(worker, request):
        pid = request.worker_pid
        if pid is None or worker.pool is None:
            return
        try:
            # Not request.terminate(): it also records the revocation in
            # the result backend, which is what cannot be reached.
            worker.pool.terminate_job(pid, signal.SIGKILL)
        except (OSError, AttributeError) as e:
            log.error('Could not terminate eternal task %s[%s]: %s',
                      request.task.name, request.task_id, e)


class _LockKeeper(threading.Thread):
    """Renews a task's lock until told to stop; flags the loss of the lock."""

    def __init__(self, task, lock, task_id, ttl):
        super().__init__(name=f'lock-keeper:{task.name}', daemon=True)
        self.task = task
        self.lock = lock
        self.task_id = task_id
        self.ttl = ttl
        self.stopping = threading.Event()
        self.lost = threading.Event()

    def run(self):
        interval = self.ttl / 3
        # The last moment the lock was known to be ours.
        held_until = time.monotonic() + self.ttl
        while not self.stopping.wait(interval):
            try:
                renewed = self.task._lock_script(
                    _RENEW, self.lock, self.task_id, self.ttl * 1000)
            except RedisError as e:
                log.warning('Could not renew lock of %s: %s', self.task.name, e)
                if time.monotonic() < held_until:
                    continue
                renewed = False
            if not renewed:
                log.error('Eternal task %s lost its lock; stopping it so that '
                          'only one copy runs', self.task.name)
                self.lost.set()
                return
            held_until = time.monotonic() + self.ttl


class EternalTask(_CeleryEternalTask):
    """Base class for a task that runs forever, once, somewhere.

    Use it as ``base=EternalTask`` with ``bind=True``; the task body loops
    until :meth:`is_aborted` turns true, checking it at least every second::

        @app.task(base=EternalTask, bind=True, shared=False)
        def listen(self):
            with connect() as conn:
                while not self.is_aborted():
                    conn.poll(timeout=0.5)

    The task takes no arguments. Beat starts it within
    :data:`~gwcelery.conf.eternal_resend_interval` seconds of any worker
    that consumes its queue being up.
    """

    abstract = True
    ignore_result = True

    @classmethod
    def on_bound(cls, app):
        # celery-eternal's on_bound schedules every second and installs a
        # step that aborts all tasks; ours reads the interval from the
        # configuration and aborts only eternal tasks.
        app.add_periodic_task(
            app.conf.eternal_resend_interval, cls, name=cls.name)
        steps = app.steps['worker']
        if _AbortEternalTasks not in steps:
            steps.add(_AbortEternalTasks)

    # -- celery-singleton's lock, with a time to live ---------------------

    @property
    def singleton_backend(self):
        # celery-singleton reads the broker URL from the configuration
        # mapping, which misses CELERY_RESULT_BACKEND and CELERY_BROKER_URL
        # from the environment; the Settings attributes honour them.
        conf = self._get_app().conf
        url = conf.result_backend
        if not str(url).startswith(('redis://', 'rediss://', 'unix://')):
            url = conf.broker_url
        backend = _lock_backends.get(url)
        if backend is None:
            backend = _lock_backends[url] = RedisBackend(url)
        return backend

    @property
    def lock_expiry(self):
        """Time to live of the lock taken when the task is sent (seconds)."""
        return max(1, round(self._get_app().conf.eternal_lock_ttl))

    @property
    def _lock_ttl_ms(self):
        return int(self._get_app().conf.eternal_lock_ttl * 1000)

    def _lock_script(self, script, lock, task_id, ttl_ms=0, record=''):
        redis = self.singleton_backend.redis
        return redis.eval(script, 2, lock, HOLDER_PREFIX + lock, task_id,
                          int(ttl_ms), record)

    def release_lock(self, task_args=None, task_kwargs=None):
        lock = self.generate_lock(self.name, task_args, task_kwargs)
        task_id = self.request.id
        if task_id is None:
            return
        try:
            self._lock_script(_RELEASE, lock, task_id)
        except RedisError as e:
            # It expires by itself within its time to live.
            log.warning('Could not release lock of %s: %s', self.name, e)

    def is_aborted(self, **kwargs):
        """True when the task should exit: warm shutdown of its worker, an
        explicit abort, or the loss of its lock."""
        keeper = getattr(self._keeper_local, 'keeper', None)
        if keeper is not None and keeper.lost.is_set():
            return True
        return super().is_aborted(**kwargs)

    _keeper_local = threading.local()

    def __call__(self, *args, **kwargs):
        task_id = self.request.id
        if task_id is None or self.request.is_eager:
            return super().__call__(*args, **kwargs)
        lock = self.generate_lock(self.name, args, kwargs)
        ttl = self._lock_ttl_ms
        record = json.dumps(_holder_record(task_id, self.request.hostname))
        if not self._lock_script(_CLAIM, lock, task_id, ttl, record):
            log.info('%s[%s] is already running elsewhere; this copy exits',
                     self.name, task_id)
            return None
        log.info('Eternal task %s[%s] holds its lock (pid %d)',
                 self.name, task_id, os.getpid())
        keeper = _LockKeeper(self, lock, task_id, ttl / 1000)
        self._keeper_local.keeper = keeper
        keeper.start()
        try:
            return self._execute(*args, **kwargs)
        finally:
            keeper.stopping.set()
            keeper.join()
            self._keeper_local.keeper = None

    def _execute(self, *args, **kwargs):
        # Task.__call__ runs the body; subclasses may run it elsewhere.
        return super().__call__(*args, **kwargs)

    def on_success(self, retval, task_id, args, kwargs):
        # Release our own lock only (a duplicate that exited at once must not
        # free the lock of the copy that runs).
        self.release_lock(task_args=args, task_kwargs=kwargs)
        self._log_exit(task_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        self.release_lock(task_args=args, task_kwargs=kwargs)
        self._log_exit(task_id)

    def _log_exit(self, task_id):
        if self.is_aborted():
            log.info('Eternal task %s[%s] stopped on request', self.name, task_id)
        else:
            log.warning('Eternal task %s[%s] returned; beat will start it '
                        'again', self.name, task_id)


# -- locks of processes that died ------------------------------------------------

# KEYS: the lock, its holder record; ARGV: the holder's task id and record.
# Delete both only if they still are that holder's.
_FREE = """
if redis.call('GET', KEYS[1]) == ARGV[1] and
        redis.call('GET', KEYS[2]) == ARGV[2] then
    redis.call('DEL', KEYS[2])
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def eternal_tasks(app):
    """The eternal tasks registered in ``app`` (its task modules imported),
    by name."""
    app.loader.import_default_modules()
    return sorted((task for task in app.tasks.values()
                   if isinstance(task, EternalTask)), key=lambda t: t.name)


@functools.cache
def _host_identity():
    """What tells this host's processes from any other's: the host name, the
    kernel's boot id (after a reboot, pids start again) and the pid
    namespace (containers may share a host name, never a namespace)."""
    parts = [socket.gethostname()]
    for path, read in (('/proc/sys/kernel/random/boot_id',
                        lambda p: Path(p).read_text()),
                       ('/proc/self/ns/pid', os.readlink)):
        try:
            parts.append(read(path).strip())
        except OSError:
            parts.append('')
    return ' '.join(parts)


def _process_state(pid):
    """``(state, start)`` of a process from ``/proc``: its state letter and
    its start time in clock ticks since boot; ``('gone', None)`` if there is
    no such process, ``(None, None)`` where ``/proc`` cannot tell (or,
    as on macOS, does not exist)."""
    if not os.path.exists('/proc/self/stat'):
        return None, None
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except FileNotFoundError:
        return 'gone', None
    except OSError:
        return None, None
    # The command name, in parentheses, may hold spaces: split after it.
    fields = text.rpartition(')')[2].split()
    if len(fields) < 20:
        return None, None
    return fields[0], fields[19]


def _holder_record(task_id, node):
    """Who holds a lock: this process, on this host."""
    pid = os.getpid()
    return {'task_id': task_id, 'node': node, 'host': _host_identity(),
            'pid': pid, 'start': _process_state(pid)[1]}


def _holder_is_dead(record):
    """Whether a holder record names a process of this host that no longer
    runs. Records of other hosts are never judged dead: their host's own
    workers judge them, or the lock expires."""
    if record.get('host') != _host_identity():
        return False
    pid = record.get('pid')
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # a process of another user: it exists
    state, start = _process_state(pid)
    if state in ('gone', 'Z', 'X'):
        return True  # gone, or dead and not yet reaped
    # The pid was given to a new process since: the holder is gone.
    return None not in (start, record.get('start')) and \
        start != record['start']


def free_locks_of_dead_holders(app):
    """Free the lock of every eternal task of ``app`` whose holder was a
    process of this host that no longer exists.

    Every worker calls this as it starts (on ``worker_ready``), so that a
    worker restarted after a SIGKILL does not wait for the locks of its
    former self to expire: beat starts those tasks again within
    :data:`~gwcelery.conf.eternal_resend_interval`. A lock whose holder
    still runs, or runs on another host, is left alone.

    Returns
    -------
    list of str
        Names of the tasks whose locks were freed.
    """
    freed = []
    for task in eternal_tasks(app):
        lock = task.generate_lock(task.name)
        redis = task.singleton_backend.redis
        text = redis.get(HOLDER_PREFIX + lock)
        try:
            record = json.loads(text) if text is not None else None
        except ValueError:
            record = None
        if not isinstance(record, dict) or not _holder_is_dead(record):
            continue
        if redis.eval(_FREE, 2, lock, HOLDER_PREFIX + lock,
                      str(record.get('task_id')), text):
            log.warning('Freed the lock of eternal task %s[%s]: its holder, '
                        'process %s of worker %s on this host, is gone',
                        task.name, record.get('task_id'), record.get('pid'),
                        record.get('node'))
            freed.append(task.name)
    return freed


@signals.worker_ready.connect
def _free_locks_on_start(sender, **kwargs):
    try:
        free_locks_of_dead_holders(sender.app)
    except RedisError as e:
        # They expire within their time to live anyway.
        log.warning('Could not look for locks of dead eternal tasks: %s', e)


def _run_in_child(task, args, kwargs):
    # Die with the pool process that supervises us, even on SIGKILL.
    try:
        billiard.util.set_pdeathsig(signal.SIGKILL)
    except OSError:
        log.warning('cannot set parent-death signal')
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        task.run(*args, **kwargs)
    except KeyboardInterrupt:
        # SIGINT is how the supervising task asks the child to stop: an
        # ordinary end, not an error with a traceback in the worker log.
        pass


class EternalProcessTask(EternalTask):
    """An eternal task whose body runs in a child process.

    For bodies that never return and cannot poll
    :meth:`~EternalTask.is_aborted` (pygcn's
    ``listen``). The task supervises the child: on abort or loss of the lock
    it sends SIGINT, then SIGKILL after :attr:`stop_timeout` seconds; if the
    child exits by itself, so does the task, and beat starts it again. The
    child dies with its parent even when the parent is killed.
    """

    abstract = True
    #: Seconds the child has to exit after SIGINT before it is killed.
    stop_timeout = 5.0
    poll_interval = 0.2

    def _execute(self, *args, **kwargs):
        process = billiard.Process(
            target=_run_in_child, args=(self, args, kwargs),
            name=f'{self.name}-child', daemon=False)
        process.start()
        log.info('Started %s in child process %d', self.name, process.pid)
        while process.is_alive() and not self.is_aborted():
            process.join(self.poll_interval)
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
            process.join(self.stop_timeout)
        if process.is_alive():
            log.warning('Child of %s ignored SIGINT; killing it', self.name)
            process.kill()
            process.join()
        log.info('Child process of %s exited with code %s',
                 self.name, process.exitcode)
