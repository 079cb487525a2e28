"""Building blocks shared by the task modules: handler registries."""
import logging

from celery import group

from .. import app

__all__ = ('Drop', 'DispatchHandler')

log = logging.getLogger(__name__)


class Drop(Exception):
    """Raised by :meth:`DispatchHandler.process_args` for a payload that is
    to be dropped for a known reason: the message is logged at ``level``
    (WARNING unless given), without a traceback, and nothing is
    dispatched.

    Parameters
    ----------
    message : str
        The whole log line: what was dropped, and why.
    level : int
        A :mod:`logging` level.
    """

    def __init__(self, message, level=logging.WARNING):
        super().__init__(message)
        self.level = level


class DispatchHandler(dict):
    """A registry of Celery tasks by key, and the dispatcher that runs them.

    Each key (a GCN notice type, an LVAlert node, …) maps to the list of
    tasks registered for it. Listeners call :meth:`dispatch` with what they
    received; subclasses decode and check it in :meth:`process_args`, so
    that the same rules hold whoever calls :meth:`dispatch`.

    Examples
    --------
    >>> registry = DispatchHandler()
    >>> @registry.handler('cbc_gstlal', queue='superevent')
    ... def handle(alert):
    ...     ...
    >>> registry.dispatch('cbc_gstlal', {'uid': 'G123'})  # doctest: +SKIP
    """

    #: Name of what the keys are, for log messages.
    key_name = 'key'

    def process_args(self, *args, **kwargs):
        """Decode what the listener received.

        The default takes the key from the first positional argument and
        passes the rest on.

        Returns
        -------
        key : hashable
            Which handlers to run.
        args : tuple
            Positional arguments for every handler.
        kwargs : dict
            Keyword arguments for every handler.

        Raises
        ------
        Drop
            For a payload to drop for a reason the subclass knows (not
            decodable, not for us): its message is logged, without a
            traceback.
        Exception
            Any other exception means the payload cannot be decoded; the
            dispatcher logs it with its traceback and drops the payload.
        """
        if not args:
            raise TypeError('dispatch() needs the key as its first argument')
        return args[0], args[1:], kwargs

    def handler(self, *keys, **task_options):
        """Decorator: make the function a task and register it under keys.

        Parameters
        ----------
        *keys
            The keys whose payloads the task handles.
        **task_options
            Passed to :meth:`celery.Celery.task` (``queue=``, ``bind=``,
            ``acks_late=``, …). ``ignore_result`` is true unless given:
            nothing reads a handler's result, and storing one would cost a
            write to the result backend per handler and message.

        Returns
        -------
        callable
            The decorator, which returns the new task.
        """
        if not keys:
            raise TypeError('handler() needs at least one key')

        task_options.setdefault('ignore_result', True)

        def decorator(func):
            task = app.task(**task_options)(func)
            for key in keys:
                self.setdefault(key, []).append(task)
            return task

        return decorator

    __call__ = handler

    def dispatch(self, *args, **kwargs):
        """Run every handler registered for the payload's key, as a group.

        A payload that :meth:`process_args` refuses (:exc:`Drop`) or
        cannot decode is logged and dropped; a key with no handler is
        logged and ignored. None of these raises: only a failure to send
        the tasks (the broker is unreachable) does.

        Returns
        -------
        celery.result.GroupResult or None
            The running group, or ``None`` when nothing was dispatched.
        """
        try:
            key, args, kwargs = self.process_args(*args, **kwargs)
        except Drop as e:
            log.log(e.level, '%s', e)
            return None
        except Exception:
            log.exception('Dropping a payload that could not be decoded')
            return None
        tasks = self.get(key)
        if not tasks:
            log.info('Ignoring payload for %s %r: no handler registered',
                     self.key_name, key)
            return None
        return group(task.s(*args, **kwargs) for task in tasks).delay()
