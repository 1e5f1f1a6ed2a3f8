"""Bounded waits: a timeout is a TimeoutError, and a cancellation is never lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from enerdatx.conditions import Conditions, wait_within


async def _cancel_once_done(wait: object) -> asyncio.Task[str]:
    """Start ``wait(future)`` in a task, finish the future, and cancel the task before it resumes."""
    future = asyncio.get_running_loop().create_future()

    async def waiter() -> str:
        await wait(future)  # type: ignore[operator]
        return "ran on"

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the task now waits for the future
    future.set_result(None)
    task.cancel()  # what Ctrl-C does to asyncio.run's main task
    return task


async def test_a_cancellation_that_meets_a_finished_wait_is_not_lost() -> None:
    task = await _cancel_once_done(lambda future: wait_within(future, 10))
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_asyncio_wait_for_of_this_python_loses_it_which_is_why_wait_within_exists() -> None:
    # CPython gh-86296, fixed in 3.12: wait_for returns the result and the task runs on.
    task = await _cancel_once_done(lambda future: asyncio.wait_for(future, 10))
    if sys.version_info >= (3, 12):
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        assert await task == "ran on"


async def test_a_condition_wait_is_cancelled_even_when_notified_at_once() -> None:
    conditions, state = Conditions(), {"ready": False}

    async def waiter() -> str:
        await conditions.wait_for(lambda: state["ready"], timeout=10)
        return "ran on"

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    state["ready"] = True
    conditions.notify()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_wait_past_its_time_is_a_timeout_error() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await wait_within(asyncio.get_running_loop().create_future(), 0.05)
    assert time.monotonic() - started < 5
    assert await wait_within(asyncio.sleep(0, result="done"), None) == "done"


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_and_writes_no_summary(tmp_path) -> None:
    # The demo ran on to its end after Ctrl-C (in the wait for the listings to spread), and
    # wrote its report and summary as if nothing had happened.
    output = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "enerdatx", "demo", "--households", "40", "--buyers", "40", "--quiet",
         "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(4)  # starting and listing: the demo takes about 10 s in all
    assert demo.poll() is None, "the demo finished before it could be interrupted"
    os.kill(demo.pid, signal.SIGINT)
    try:
        code = demo.wait(timeout=60)
    finally:
        demo.kill()
    assert code == 130, demo.stderr.read() if demo.stderr else ""
    assert not (output / "summary.json").exists()
