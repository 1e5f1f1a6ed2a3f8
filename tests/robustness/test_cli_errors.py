"""Every command, given bad input, exits non-zero with one line on stderr and no traceback (issue 13).

Each case of ``enerdatx.bench.entry.CLI_CASES`` runs ``python -m enerdatx ...`` as a process of
its own; the processes start together (a module fixture), four at a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from enerdatx.bench.entry import CLI_CASES as CASES
from enerdatx.bench.entry import USAGE_CASES, run_cases, write_scratch
from enerdatx.cli.peer import parse_address

# The fast suite runs these (one of each kind of failure); the slow suite runs the whole table.
FAST = {
    "meter read: JSON 100k deep", "meter read: --out onto a full disk", "meter read: --out in a missing directory",
    "meter read: nothing read (oehu)", "ipfs import-car: a directory", "peer run: a corrupt database",
    "peer run: an empty database for a key that signed", "peer run: a port out of range",
    "peer run: a meter address without a port", "meter synth: a --location that is not UTF-8",
    "peer run: a --host that is not UTF-8", "peer run: an OEHU --device that is not UTF-8",
}


def _cases(names: list[str]) -> list:
    return [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in names]


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    directory = tmp_path_factory.mktemp("hostile")
    write_scratch(directory)
    fast_only = (request.config.getoption("-m") or "").strip() == "not slow"  # the default run (pyproject addopts)
    return run_cases(directory, FAST if fast_only else None)


@pytest.mark.parametrize("name", _cases(list(CASES)))
def test_a_bad_input_is_one_line_and_a_non_zero_exit(results: dict, name: str) -> None:
    _args, code, expected = CASES[name]
    result = results[name]
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("enerdatx: error: ") and expected in lines[-1], result.stderr
    assert len([line for line in lines if line.startswith("enerdatx: ")]) == 1


@pytest.mark.parametrize("name", _cases(list(USAGE_CASES)))
def test_a_bad_argument_is_a_usage_error(results: dict, name: str) -> None:
    result = results[name]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ": error: argument" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(("words", "expected"), [
    (["--oehu", "http://127.0.0.1:9"], "--oehu needs --device ID"),
    (["--offer", "{d}/offer.json"], "offer.json: not an offer file: expected a JSON object"),
    (["--offer", "{d}/missing.json"], "missing.json: cannot read the offer file"),
])
def test_a_bad_live_option_is_refused_before_the_peer_is_made(tmp_path: Path, words: list[str], expected: str) -> None:
    # Checked only once the peer ran: the refused command had made the directory, a key and a market.
    (tmp_path / "offer.json").write_text("[1]")
    words = [word.replace("{d}", str(tmp_path)) for word in words]
    result = subprocess.run([sys.executable, "-m", "enerdatx", "peer", "run", "--dir", str(tmp_path / "peer"), *words],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("enerdatx: error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "peer").exists()


@pytest.mark.parametrize("text", ["a..b:5", "\udcff:5", "x" * 300 + ":5"])
def test_a_peer_address_no_host_can_have_is_named(text: str) -> None:
    # The idna codec's UnicodeError came out as argparse's "invalid parse_address value".
    with pytest.raises(argparse.ArgumentTypeError, match="expected HOST:PORT|not a host name"):
        parse_address(text)
