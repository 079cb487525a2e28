"""Polling with a deadline, in place of fixed sleeps."""
import time


def wait_for(condition, timeout=10.0, interval=0.05, what='condition'):
    """Call ``condition`` until it returns a true value; return that value.

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
            raise TimeoutError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)
