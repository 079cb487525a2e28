"""gwcelery.util.asyncio_thread: an event loop in a thread, called from
others."""
import asyncio
import threading

import pytest

from gwcelery.util.asyncio_thread import LoopThread


@pytest.fixture
def loop_thread():
    thread = LoopThread('test-loop').start()
    yield thread
    thread.stop()


def test_call_returns_and_raises(loop_thread):
    async def where():
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert loop_thread.call(where(), timeout=5) == 'test-loop'

    async def fail():
        raise KeyError('from the loop')

    with pytest.raises(KeyError, match='from the loop'):
        loop_thread.call(fail(), timeout=5)


def test_call_times_out_and_cancels(loop_thread):
    cancelled = threading.Event()

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match='test-loop: no result within'):
        loop_thread.call(forever(), timeout=0.1)
    assert cancelled.wait(5)


def test_stop_cancels_pending_tasks_and_ends_the_thread():
    thread = LoopThread('test-stop').start()
    cleaned = threading.Event()

    async def background():
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    async def spawn():
        return asyncio.ensure_future(background())

    thread.call(spawn(), timeout=5)
    thread.stop(timeout=5)
    assert cleaned.is_set()
    assert not thread.running
    assert thread.loop.is_closed()
    with pytest.raises(RuntimeError, match='not running'):
        thread.call(spawn(), timeout=1)
    thread.stop()  # stopping twice is harmless


def test_a_stopped_thread_can_start_again():
    thread = LoopThread('test-restart').start()
    thread.stop()

    async def answer():
        return 42

    thread.start()
    try:
        assert thread.call(answer(), timeout=5) == 42
    finally:
        thread.stop()
