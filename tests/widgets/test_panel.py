from __future__ import annotations

import asyncio

import pytest

from enerdatx.errors import InsufficientFundsError
from enerdatx.widgets import Panel, show_figure


def test_panel_lays_out_title_controls_progress_and_message():
    import ipywidgets as widgets

    button = widgets.Button(description="go")
    panel = Panel("Test", [button])
    assert panel.children[1] is button
    assert panel.children[-2] is panel.progress and panel.children[-1] is panel.message
    other = widgets.Text()
    panel.set_controls([other])
    assert other in panel.children and button not in panel.children


def test_attempt_shows_typed_errors_as_messages_and_clears_them_on_success():
    panel = Panel("Test")

    def overspend():
        raise InsufficientFundsError(3, 10)

    assert panel.attempt(overspend) is None
    assert panel.error == "balance 3 is less than the amount 10"
    assert "balance 3 is less than the amount 10" in panel.message.value
    assert not panel.busy
    assert panel.attempt(lambda: 42) == 42
    panel.show_info("done")
    assert panel.error == "" and panel.info == "done"


def test_unexpected_errors_are_shown_with_their_type():
    panel = Panel("Test")
    panel.attempt(lambda: 1 / 0)
    assert panel.error == "ZeroDivisionError: division by zero"


def test_failures_from_below_are_the_same_one_line_as_on_the_command_line():
    import errno
    import json

    panel = Panel("Test")

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "/data/chain.sqlite")

    panel.attempt(full_disk)
    assert panel.error == "/data/chain.sqlite: cannot use the file: the disk is full"
    panel.attempt(lambda: json.loads("[" * 100_000 + "]" * 100_000))
    assert panel.error == "the input is nested too deeply"
    panel.attempt(lambda: int("9" * 5000))
    assert panel.error == "a number has too many digits"


def test_an_error_is_one_line_of_at_most_a_few_hundred_characters():
    # A megabyte typed into a price box was echoed back whole; a CSV error kept its newline.
    from enerdatx.widgets import whole_tokens

    panel = Panel("Test")
    panel.attempt(lambda: whole_tokens("9x" * 500_000))
    assert panel.error.startswith("a price is a whole number of tokens, not '9x9x")
    assert len(panel.error) == 300 and panel.error.endswith("…")
    assert len(panel.message.value) < 500
    panel.show_error(ValueError("unreadable CSV: Expected 1 fields in line 56, saw 32\n"))
    assert panel.error == "unreadable CSV: Expected 1 fields in line 56, saw 32"


def test_messages_are_escaped():
    panel = Panel("Test")
    panel.show_error("<script>x</script>")
    assert "<script>" not in panel.message.value


def test_working_shows_progress_and_hides_the_bar_afterwards():
    panel = Panel("Test")
    seen = []
    with panel.working("Counting", total=4) as advance:
        assert panel.progress.layout.display is None
        for _ in range(4):
            advance()
            seen.append(panel.progress.value)
    assert seen == [1, 2, 3, 4]
    assert panel.progress.bar_style == "success"
    assert panel.progress.layout.display == "none"


def test_working_marks_a_failure():
    panel = Panel("Test")
    with pytest.raises(RuntimeError), panel.working("Failing", total=2):
        raise RuntimeError("x")
    assert panel.progress.bar_style == "danger"


async def test_attempt_async_returns_an_awaitable_task_and_reports_errors():
    panel = Panel("Test")

    async def fine():
        await asyncio.sleep(0)
        return "ok"

    async def broken():
        await asyncio.sleep(0)
        raise InsufficientFundsError(0, 1)

    assert await panel.attempt_async(fine) == "ok"
    task = panel.attempt_async(broken)
    assert panel.busy or not task.done()
    await panel.settle()
    assert task.result() is None
    assert panel.error == "balance 0 is less than the amount 1"
    assert not panel.busy


async def test_an_action_whose_wait_is_cancelled_under_it_says_so():
    # A buy while Stop all ran: the fetch it awaited was cancelled, the task ended "cancelled"
    # and the panel kept showing its last news as if nothing had happened.
    panel = Panel("Test")
    panel.show_info("listed 9a9fce08faf6 for 40")
    waited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def buy():
        await waited

    task = panel.attempt_async(buy)
    await asyncio.sleep(0)
    waited.cancel()  # the peer stopped: not the panel's task
    assert await task is None
    assert panel.error == "cancelled before it finished: were the peers stopped?"
    assert not panel.busy
    waited = asyncio.get_running_loop().create_future()
    task = panel.attempt_async(buy)  # the task itself cancelled (the kernel shuts down): it ends cancelled
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_show_figure_puts_the_plotly_bundle_into_the_output_state():
    import ipywidgets as widgets
    import plotly.graph_objects as go

    output = widgets.Output()
    show_figure(output, go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    show_figure(output, go.Figure(go.Bar(x=[1], y=[5])))
    (shown,) = output.outputs
    assert shown["data"]["application/vnd.plotly.v1+json"]["data"][0]["type"] == "bar"


def test_whole_tokens_reads_a_price_box_or_says_what_is_wrong():
    from enerdatx.errors import MarketError
    from enerdatx.widgets import whole_tokens

    assert whole_tokens(" 40 ") == 40 and whole_tokens("0") == 0
    for typed in ("", "forty", "4e2", "-1", "12.5", "\u0664\u0660"):
        with pytest.raises(MarketError, match="is a whole number of tokens, not"):
            whole_tokens(typed)
    assert whole_tokens("9" * 12) == 10**12 - 1
    with pytest.raises(MarketError, match="^a price is at most 999,999,999,999 tokens, not 9999999999999$"):
        whole_tokens(" " + "9" * 13)
    panel = Panel("Test")
    assert panel.attempt(lambda: whole_tokens("1O", "the offer")) is None
    assert panel.error == "the offer is a whole number of tokens, not '1O'"


async def test_a_wait_that_runs_out_is_not_called_a_file_error():
    # A bare asyncio TimeoutError is an OSError by inheritance: it was shown as "cannot use the file: ".
    panel = Panel("Test")

    async def wait_forever():
        await asyncio.wait_for(asyncio.get_running_loop().create_future(), 0.01)

    assert await panel.attempt_async(wait_forever) is None
    assert panel.error == "no answer in time"

    def refused():
        raise ConnectionRefusedError(111, "Connection refused")

    panel.attempt(refused)
    assert panel.error == "[Errno 111] Connection refused"
