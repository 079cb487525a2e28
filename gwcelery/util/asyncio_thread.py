"""An asyncio event loop in a background thread, for synchronous callers.

Asyncio servers and clients (the VOEvent broadcaster, the XMPP publisher)
are used from synchronous code: Celery tasks, command-line tools, request
handlers. :class:`LoopThread` runs their event loop in a daemon thread and
lets any thread run a coroutine on it and wait for the result::

    thread = LoopThread('broadcaster').start()
    try:
        result = thread.call(some_coroutine(), timeout=10)
    finally:
        thread.stop()
"""
import asyncio
import concurrent.futures
import threading

__all__ = ('LoopThread', 'close_loop')


def close_loop(loop):
    """Cancel the tasks still pending on a stopped loop, let them finish
    their clean-up, and close the loop."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(
            asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class LoopThread:
    """An event loop running in a daemon thread.

    Parameters
    ----------
    name : str
        Name of the thread (it shows in logs and debuggers).
    """

    def __init__(self, name):
        self.name = name
        self.loop = None
        self._thread = None

    def start(self):
        """Start the thread and its loop; return self."""
        if self.running:
            raise RuntimeError(f'{self.name}: the loop is already running')
        loop = self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                close_loop(loop)

        self._thread = threading.Thread(target=run, name=self.name,
                                        daemon=True)
        self._thread.start()
        started.wait()
        return self

    @property
    def running(self):
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def call(self, coroutine, timeout):
        """Run a coroutine on the loop from any other thread.

        Returns
        -------
        object
            What the coroutine returned; what it raised is raised here.

        Raises
        ------
        TimeoutError
            If it did not finish within timeout seconds; it is then
            cancelled.
        RuntimeError
            If the loop is not running.
        """
        if not self.running:
            coroutine.close()  # never awaited: say so quietly
            raise RuntimeError(f'{self.name}: the loop is not running')
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f'{self.name}: no result within {timeout} s') from None

    def stop(self, timeout=10.0):
        """Stop the loop, cancelling what still runs on it, and wait for
        the thread to end (at most timeout seconds)."""
        if not self.running:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
