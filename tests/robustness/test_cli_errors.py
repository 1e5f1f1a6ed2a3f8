"""Every command, given bad input, exits non-zero with one line on stderr and no traceback (issue 13).

Each case runs ``python -m enerdatx ...`` as a process of its own; the processes of all cases
start together (a module fixture), so the table costs about as much CPU as it has rows.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from enerdatx.meter import render_telegrams, synthetic_household, write_csv

# name -> (arguments, where {d} is the scratch directory, the expected exit code, text stderr must hold)
CASES: dict[str, tuple[list[str], int, str]] = {
    "meter read: truncated .gz": (["meter", "read", "{d}/trunc.gz", "--format", "dsmr"], 1, "Compressed file ended"),
    "meter read: a directory (dsmr)": (["meter", "read", "{d}/dir", "--format", "dsmr"], 1, "dir"),
    "meter read: a directory (oehu)": (["meter", "read", "{d}/dir", "--format", "oehu"], 1, "is a directory"),
    "meter read: a directory (csv)": (["meter", "read", "{d}/dir", "--format", "csv"], 1, "Is a directory"),
    "meter read: JSON 100k deep": (["meter", "read", "{d}/deep.json", "--format", "oehu"], 1, "nested deeper"),
    "meter read: a 100k-digit integer": (["meter", "read", "{d}/bigint.json", "--format", "oehu"], 1, "OEHU data"),
    "meter read: --out in a missing directory": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "{d}/nowhere/x.csv"], 1, "non-existent directory"
    ),
    "meter read: --out onto a directory": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "{d}/dir"], 1, "is a directory"
    ),
    "meter read: nothing read (dsmr)": (["meter", "read", "{d}/empty.txt", "--format", "dsmr"], 1, "no readings"),
    "meter read: nothing read (oehu)": (["meter", "read", "{d}/empty.json", "--format", "oehu"], 1, "no readings"),
    "meter read: a missing file": (["meter", "read", "{d}/missing.csv", "--format", "csv"], 1, "no such file"),
    "meter synth: a start that is no date": (
        ["meter", "synth", "--start", "garbage", "--days", "1", "--out", "{d}/x.csv"], 1, "is not a date"
    ),
    "meter synth: --out in a missing directory": (
        ["meter", "synth", "--days", "1", "--out", "{d}/nowhere/x.csv"], 1, "cannot write the readings"
    ),
    "meter read: --out onto a full disk": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "/dev/full"], 1, "the disk is full"
    ),
    "meter synth: telegrams onto a full disk": (
        ["meter", "synth", "--days", "1", "--telegrams", "v5", "--out", "/dev/full"], 1, "the disk is full"
    ),
    "ipfs export-car: onto a device": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "/dev/null"], 1, "not a regular file"
    ),
    "ipfs import-car: a missing file": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/no.car"], 1, "no such file"),
    "ipfs import-car: a directory": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/dir"], 1, "is a directory"),
    "ipfs import-car: not a CAR": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/s.csv"], 1, "error: "),
    "ipfs export-car: into a missing directory": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "{d}/nowhere/x.car"], 1, "error: "
    ),
    "ipfs export-car: onto a directory": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "{d}/dir"], 1, "is a directory"
    ),
    "ipfs --repo: a file": (["ipfs", "--repo", "{d}/s.csv", "add", "{d}/s.csv"], 1, "cannot open the content store"),
    "ipfs cat: not a CID": (["ipfs", "--repo", "{d}/repo", "cat", "bogus"], 1, "not a CID"),
    "peer run: --dir is a file": (["peer", "run", "--dir", "{d}/s.csv"], 1, "not a directory"),
    "peer run: a corrupt database": (["peer", "run", "--dir", "{d}/corrupt"], 1, "cannot use the block store"),
    "peer run: an address not on this machine": (
        ["peer", "run", "--dir", "{d}/p", "--host", "192.0.2.1"], 1, "cannot listen on 192.0.2.1"
    ),
    "peer id: --dir is a file": (["peer", "id", "--dir", "{d}/s.csv"], 1, "not a directory"),
    "peer backup: not a peer directory": (["peer", "backup", "--dir", "{d}/dir", "--out", "{d}/b"], 1, "not a peer"),
    "peer recover: no key": (["peer", "recover", "--dir", "{d}/dir", "--peer", "127.0.0.1:9"], 1, "no identity.key"),
}
# The fast suite runs these (one of each kind of failure); the slow suite runs the whole table.
FAST = {
    "meter read: JSON 100k deep", "meter read: --out onto a full disk", "meter read: --out in a missing directory", "meter read: nothing read (oehu)",
    "ipfs import-car: a directory", "peer run: a corrupt database", "peer run: a port out of range",
}


def _cases(names: list[str]) -> list:
    return [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in names]


# argparse errors (exit 2) print usage first, and end with one error line.
USAGE_CASES: dict[str, list[str]] = {
    "peer run: a port out of range": ["peer", "run", "--dir", "{d}/p", "--port", "99999"],
    "peer run: a negative port": ["peer", "run", "--dir", "{d}/p", "--port", "-5"],
    "meter read: an unknown format": ["meter", "read", "{d}/s.csv", "--format", "xml"],
    "demo: too many peers": ["demo", "--households", "10000000", "--quiet", "--output", "{d}/demo"],
}


def _scratch(directory: Path) -> None:
    (directory / "dir").mkdir()
    frame = synthetic_household(seed=1, days=1)
    write_csv(frame, directory / "s.csv")
    telegrams = "".join(render_telegrams(frame.iloc[:20], "v5")).encode()
    (directory / "trunc.gz").write_bytes(gzip.compress(telegrams)[:200])
    (directory / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (directory / "bigint.json").write_text('[{"deviceId": "a", "metadata": {"lastUpdate": ' + "9" * 100_000 + "}}]")
    (directory / "empty.txt").write_text("")
    (directory / "empty.json").write_text("[]")
    (directory / "corrupt").mkdir()
    (directory / "corrupt" / "chain.sqlite").write_bytes(b"not a database" * 500)


def _run(args: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    argv = [arg.replace("{d}", str(directory)) for arg in args]
    return subprocess.run(
        [sys.executable, "-m", "enerdatx", *argv], capture_output=True, text=True, timeout=120, cwd=directory
    )


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    directory = tmp_path_factory.mktemp("hostile")
    _scratch(directory)
    every = {**{name: case[0] for name, case in CASES.items()}, **USAGE_CASES}
    if "not slow" in (request.config.getoption("-m") or ""):
        every = {name: args for name, args in every.items() if name in FAST}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, args, directory) for name, args in every.items()}
        return {name: future.result() for name, future in futures.items()}


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
