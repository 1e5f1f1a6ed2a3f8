"""The fuzz harness's peer stops cleanly, without noise at interpreter exit, wherever it was used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
NOISE = ("Exception ignored", "ProgrammingError", "Traceback", "Task was destroyed")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_the_harness_stops_at_exit_without_noise() -> None:
    # Before: stopped by an atexit callback, after concurrent.futures had shut the loop's executor
    # down: "RuntimeError: cannot schedule new futures after shutdown" tracebacks on every exit.
    result = _python("from fuzz.network import harness; harness()")
    assert result.returncode == 0, result.stderr
    assert not [word for word in NOISE if word in result.stderr], result.stderr


def test_bench_robustness_fuzz_replays_its_crashers_without_noise_at_exit() -> None:
    # Before: `bench robustness --only fuzz` replayed saved crashers in its thread pool, so the
    # harness's peer was started there and stopped at exit on the main thread: "Exception ignored
    # in atexit callback ... sqlite3.ProgrammingError: SQLite objects created in a thread ...".
    # The fuzzers themselves (atheris, in child processes) are replaced by a run that finds nothing.
    pytest.importorskip("atheris")
    result = _python(
        "import subprocess, json\n"
        "import enerdatx.bench.robustness as r\n"
        "r.subprocess.run = lambda command, **kw: subprocess.CompletedProcess(command, 0, '', '')\n"
        "figures = r.fuzz_figures(1)\n"
        "print(json.dumps(figures))\n"
    )
    assert result.returncode == 0, result.stderr
    assert not [word for word in NOISE if word in result.stderr], result.stderr
    figures = __import__("json").loads(result.stdout)
    assert figures["trustchain_message"]["saved_crashers"] >= 1
    assert all(f["saved_crashers_fixed"] == f["saved_crashers"] for f in figures.values()), figures


def test_the_harness_refuses_a_second_thread() -> None:
    result = _python(
        "import threading\n"
        "from fuzz.network import harness\n"
        "harness()\n"
        "errors = []\n"
        "def other():\n"
        "    try:\n"
        "        harness()\n"
        "    except RuntimeError as exc:\n"
        "        errors.append(str(exc))\n"
        "t = threading.Thread(target=other); t.start(); t.join()\n"
        "assert errors and 'thread' in errors[0], errors\n"
    )
    assert result.returncode == 0, result.stderr
