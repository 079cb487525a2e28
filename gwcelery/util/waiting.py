"""Polling with a deadline, and free loopback ports.

The command-line tools, the test suite and the benchmarks wait for other
processes the same way: they call a condition until it holds or a deadline
passes, rather than sleeping for a time that is too long on a quiet machine
and too short on a busy one.
"""
import socket
import time

__all__ = ('free_port', 'listening', 'wait_for')


def free_port(host='127.0.0.1'):
    """A TCP port on ``host`` (the loopback interface by default) that
    nothing listens on now.

    Another process may take it before the caller binds it, so use it at
    once; that is good enough for servers that a test or benchmark starts.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def listening(host, port, timeout=0.2):
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(condition, timeout=10.0, interval=0.05, what='condition'):
    """Call ``condition`` until it returns a true value; return that value.

    Parameters
    ----------
    condition : callable
        Called with no arguments. An exception it raises propagates, which
        lets a condition stop the wait early (a server that has exited).
    timeout : float
        Seconds before giving up.
    interval : float
        Seconds between calls.
    what : str
        What is awaited, for the error message.

    Raises
    ------
    TimeoutError
        If it is still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(
                f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)
