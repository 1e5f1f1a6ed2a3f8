"""The frame every workbench panel shares: a title, its controls, a progress bar, a message line.

A panel runs each user action through :meth:`Panel.attempt` (or :meth:`Panel.attempt_async`
for coroutines): an error becomes a message in the panel instead of a traceback in the
kernel log, where nobody would see it. Long work reports through :meth:`Panel.working`.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio
import traitlets

from enerdatx.errors import EnerDatXError, MarketError, typed_error

__all__ = ["Panel", "short_key", "show_figure", "whole_tokens"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors a user can cause with bad input: shown plainly. Anything else is a bug: shown with
# its type and logged with the traceback.
EXPECTED_ERRORS = (EnerDatXError, ValueError, KeyError, OSError, TimeoutError)
# Errors quote what was typed: a megabyte in a price box came back as a megabyte of message.
MAX_ERROR_CHARS = 300


class Advance(Protocol):
    """What :meth:`Panel.working` yields: move the progress bar on by ``steps``."""

    def __call__(self, steps: int = 1) -> None: ...


def short_key(public_key: bytes) -> str:
    """The first 8 hex digits of a public key: enough to tell peers apart on screen."""
    return public_key.hex()[:8]


def whole_tokens(text: str, what: str = "a price") -> int:
    """A number of tokens typed into a text box; MarketError (a message, not a traceback) otherwise.

    Price boxes are text boxes: an integer box in the browser silently keeps its last valid
    value when someone types letters, so the user would never learn the price was not taken.
    """
    cleaned = text.strip()
    if not cleaned.isdecimal() or not cleaned.isascii():
        raise MarketError(f"{what} is a whole number of tokens, not {cleaned!r}")
    if len(cleaned) > 12:  # it said "is a whole number of tokens, not '99999999999999'", which it is
        raise MarketError(f"{what} is at most {10**12 - 1:,} tokens, not {cleaned}")
    return int(cleaned)


def show_figure(output: widgets.Output, figure: go.Figure) -> None:
    """Show a plotly figure in ``output`` through the widget's synced state.

    Displaying inside ``with output:`` would go through the kernel's display stream, tagged
    with whichever cell is running: a front end without widgets (nbval, nbconvert) would
    then attach the figure to that cell.
    """
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class Panel(widgets.VBox):
    """A titled box of controls with a progress bar and a message line for errors and news."""

    error = traitlets.Unicode("", help="the last error shown; empty after a success")
    info = traitlets.Unicode("", help="the last message shown after a success")
    busy = traitlets.Bool(False, help="True while an action runs")
    revision = traitlets.Int(0, help="counts the panel's changes to shared state (peers, chains, market)")

    def __init__(self, title: str, controls: Sequence[widgets.Widget] = (), **kwargs: object) -> None:
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="", layout=widgets.Layout(display="none")
        )
        self.message = widgets.HTML("")
        self.title = title
        self._controls: tuple[widgets.Widget, ...] = tuple(controls)
        self._tasks: set[asyncio.Task[object]] = set()
        self._running: dict[str, str] = {}  # the actions under way: their group (or qualified name) -> name
        self._quiet = False  # True while the panel itself changes its dropdowns
        super().__init__(**kwargs)
        self._lay_out()

    def set_controls(self, controls: Sequence[widgets.Widget]) -> None:
        """Replace the panel's controls (the title, progress bar and message line stay)."""
        self._controls = tuple(controls)
        self._lay_out()

    def _lay_out(self) -> None:
        heading = widgets.HTML(f"<b>{html.escape(self.title)}</b>")
        self.children = (heading, *self._controls, self.progress, self.message)

    # --- choices ------------------------------------------------------------------------

    def pick(self, dropdown: widgets.Dropdown, options: Sequence[Any]) -> None:
        """Set a dropdown's options, keeping its value if still offered, else the first; no events."""
        values = [option[1] if isinstance(option, tuple) else option for option in options]
        keep = dropdown.value if dropdown.value in values else (values[0] if values else None)
        self._quiet = True
        try:
            dropdown.options = list(options)
            dropdown.value = keep
        finally:
            self._quiet = False

    def when_picked(self, dropdown: widgets.Dropdown, action: Callable[[], object]) -> None:
        """Run ``action`` (guarded) when the user, not :meth:`pick`, changes ``dropdown``."""
        dropdown.observe(lambda _: None if self._quiet else self.attempt(action), "value")

    # --- messages ---------------------------------------------------------------------

    def show_info(self, text: str) -> None:
        """Show a message about something that went well."""
        self.error = ""
        self.info = text
        self.message.value = f'<span class="edx-info">{html.escape(text)}</span>'

    def show_error(self, error: BaseException | str) -> None:
        """Show an error as a message in the panel."""
        if isinstance(error, BaseException):
            text = str(error) if isinstance(error, EXPECTED_ERRORS) else f"{type(error).__name__}: {error}"
            if isinstance(error, KeyError) and not isinstance(error, EnerDatXError):
                text = f"not found: {error}"
        else:
            text = error
        text = " ".join(text.splitlines())  # one line: pandas' CSV errors end in a newline
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 1] + "…"
        self.info = ""
        self.error = text or type(error).__name__
        self.message.value = f'<span class="edx-error" style="color:#b00020">&#9888; {html.escape(self.error)}</span>'

    def changed(self) -> None:
        """Say that this panel changed shared state, so that panels observing ``revision`` refresh."""
        self.revision += 1

    def refresh(self) -> None:
        """Read the state shown again (panels override this)."""

    # --- running actions --------------------------------------------------------------

    def attempt(self, action: Callable[[], T]) -> T | None:
        """Run ``action``; on failure show the error and return None."""
        self.busy = True
        try:
            result = action()
        except Exception as exc:  # noqa: BLE001 - the panel boundary: nothing may escape as a traceback
            self._fail(exc)
            return None
        finally:
            self.busy = False
        return result

    def attempt_async(self, action: Callable[[], Awaitable[T]], *, group: str | None = None) -> asyncio.Task[T | None]:
        """Schedule coroutine ``action`` on the running loop (the kernel's); errors become messages.

        Returns the task, so that tests and notebook cells can ``await`` it. While the same
        action runs, another is refused with a message: a second click on Start peers opened
        the directory the first was opening, a second Found left one union waiting 10 s.
        Actions of one ``group`` refuse each other likewise (Start peers while Stop all runs).
        """
        name = group or getattr(action, "__qualname__", None)
        if name is not None and name in self._running:
            self.show_error(f"still busy with the last {self._running[name]}: wait for it to finish")

            async def refused() -> T | None:
                return None

            return asyncio.get_running_loop().create_task(refused())

        async def guarded() -> T | None:
            self.busy = True
            try:
                return await action()
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():  # this task was cancelled: let it end so
                    raise
                # What it awaited was cancelled under it (a buy while Stop all ran): the task ended
                # "cancelled" and the panel said nothing, its last news still showing.
                self.show_error("cancelled before it finished: were the peers stopped?")
                return None
            except Exception as exc:  # noqa: BLE001 - the panel boundary
                self._fail(exc)
                return None
            finally:
                self.busy = False

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)
        if name is not None:
            self._running[name] = getattr(action, "__name__", name)
            task.add_done_callback(lambda _: self._running.pop(name, None))
        return task

    async def settle(self) -> None:
        """Wait until every action this panel scheduled has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _fail(self, exc: Exception) -> None:
        typed = typed_error(exc)  # a full disk, a too-deep document: the same one line as the CLI
        if typed is None and not isinstance(exc, EXPECTED_ERRORS):
            logger.exception("%s: unexpected error", self.title)
        self.show_error(typed if typed is not None else exc)

    @contextmanager
    def working(self, description: str, total: int) -> Iterator[Advance]:
        """Show a progress bar for ``total`` steps; yields ``advance(steps=1)``."""
        bar = self.progress
        bar.description = description
        bar.max = max(total, 1)
        bar.value = 0
        bar.bar_style = ""
        bar.layout.display = None

        def advance(steps: int = 1) -> None:
            bar.value = min(bar.value + steps, bar.max)

        try:
            yield advance
            bar.value = bar.max
            bar.bar_style = "success"
        except BaseException:
            bar.bar_style = "danger"
            raise
        finally:
            bar.layout.display = "none"
