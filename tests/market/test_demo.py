"""`enerdatx demo`: the whole market on this machine, through the command line."""

from __future__ import annotations

import json
import re

import pytest

from enerdatx.cli import main
from enerdatx.cli.demo import run_demo
from enerdatx.errors import ConfigurationError, StorageError


def test_the_demo_trades_verifies_and_writes_a_summary_and_a_report(tmp_path, capsys):
    output = tmp_path / "out"
    assert main(["demo", "--households", "3", "--buyers", "2", "--output", str(output)]) == 0
    summary = json.loads((output / "summary.json").read_text())
    assert summary["checks"]["all_passed"] is True
    assert summary["listings"] == 6 and len(summary["trades"]) >= 2
    assert summary["tokens_moved"] == sum(t["amount"] for t in summary["trades"])
    spent = sum(w["spent"] for w in summary["wallets"] if w["role"] == "buyer")
    earned = sum(w["earned"] for w in summary["wallets"] if w["role"] == "household")
    assert spent == earned == summary["tokens_moved"]
    report = (output / "report.html").read_text()
    assert "plotly" in report and "Order book" in report
    assert "<script src=\"http" not in report  # plotly.js is embedded: nothing is fetched
    assert "all checks passed" in capsys.readouterr().out


def test_a_larger_demo_passes_its_checks_too(tmp_path, capsys):
    # From 12 households and 6 buyers on, some households held a buyer's newest block from gossip
    # without the ones before it, and their (incomplete) view of its balance failed the check.
    output = tmp_path / "out"
    assert main(["demo", "--households", "12", "--buyers", "6", "--quiet", "--output", str(output)]) == 0
    checks = json.loads((output / "summary.json").read_text())["checks"]
    assert checks["balance_views_agree"] is True and checks["all_passed"] is True


@pytest.mark.parametrize("args, message", [
    # Before: 0 and -3 got past the argument type and ended as "need at least one household",
    # and a file as --output as "cannot use the file: already exists".
    (["--households", "0"], "--households: expected a whole number from 1 to 200, got '0'"),
    (["--buyers", "-3"], "--buyers: expected a whole number from 1 to 200, got '-3'"),
    (["--output", "{file}"], "exists and is not a directory"),
    (["--output", ""], "expected a directory path"),
])
def test_bad_demo_arguments_are_refused_before_any_peer_starts(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *(a.format(file=tmp_path / "file") for a in args)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def _no_market(*args, **kwargs):
    raise AssertionError("the demo started its peers")


@pytest.mark.parametrize(("make", "output", "message"), [
    # Each was found only once the demo had run, and a summary.json that was a directory left
    # the report without its summary.
    (lambda d: (d / "out" / "summary.json").mkdir(parents=True), "out", "out/summary.json: is a directory"),
    (lambda d: (d / "out" / "report.html").mkdir(parents=True), "out", "out/report.html: is a directory"),
    (lambda d: (d / "out").mkdir() or (d / "out" / "summary.json").symlink_to("/dev/null"), "out",
     "out/summary.json: is not a regular file"),
    (lambda d: (d / "file").write_text(""), "file/out", "file/out: {d}/file is not a directory"),
    (lambda d: None, "/proc/1/enerdatx-demo", "/proc/1/enerdatx-demo: cannot write into /proc/1"),
    # Refused by mkdir once the options were read: "cannot make the output directory: already exists".
    (lambda d: (d / "out").symlink_to(d / "nothing"), "out", "out: is a symbolic link to nothing (or a loop of them)"),
    # An OSError from Path.exists, which argparse let through as a traceback.
    (lambda d: None, "q" * 300, "cannot use the output directory: the name is too long"),
])
def test_an_output_the_demo_cannot_write_into_is_refused_before_any_peer_starts(
    tmp_path, capsys, monkeypatch, make, output: str, message: str
):
    monkeypatch.setattr("enerdatx.lab.Lab", _no_market)
    make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    output = output if output.startswith("/") else str(tmp_path / output)
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--households", "1", "--buyers", "1", "--output", output])
    err = capsys.readouterr().err.splitlines()[-1]
    assert exit_.value.code == 2
    assert err.startswith("enerdatx demo: error: argument --output: ") and err.endswith(message.format(d=tmp_path))
    assert sorted(tmp_path.rglob("*")) == before


async def test_run_demo_refuses_such_an_output_too(tmp_path, monkeypatch):
    monkeypatch.setattr("enerdatx.lab.Lab", _no_market)
    (tmp_path / "summary.json").mkdir()
    with pytest.raises(StorageError, match="summary.json: is a directory"):
        await run_demo(tmp_path, households=1, buyers=1, progress=False)


async def test_a_demo_that_fails_at_its_summary_leaves_no_report_and_no_directory(tmp_path, monkeypatch):
    def full_disk(path, **kwargs):
        raise StorageError("cannot write the summary: the disk is full", path=path)

    monkeypatch.setattr("enerdatx.cli.demo.atomic_output", full_disk)
    with pytest.raises(StorageError, match="the disk is full"):
        await run_demo(tmp_path / "new" / "out", households=1, buyers=1, progress=False)
    assert list(tmp_path.iterdir()) == []  # the report was left, in the directories the demo made


@pytest.mark.parametrize(("options", "message"), [
    # Each failed once the peers had started: "max() arg is an empty sequence", an IndexError,
    # "can only concatenate str (not "int") to str".
    ({"households": 0}, "households must be a whole number from 1 to 200, not 0"),
    ({"households": -1}, "households must be a whole number from 1 to 200, not -1"),
    ({"buyers": "2"}, "buyers must be a whole number from 1 to 200, not '2'"),
    ({"buyers": 0}, "buyers must be a whole number from 1 to 200, not 0"),  # ran, and failed its checks
    ({"seed": "x"}, "seed must be a whole number, not 'x'"),
    # 250 and 250 ran four minutes, until a trade waited past its payment's deadline.
    ({"households": 150, "buyers": 60}, "the demo runs at most 200 peers in one process, not 150 households and 60 "
                                        "buyers; `enerdatx bench market --peers N --workers 2` runs larger markets"),
])
async def test_run_demo_refuses_counts_and_seeds_of_the_wrong_kind(tmp_path, monkeypatch, options, message):
    monkeypatch.setattr("enerdatx.lab.Lab", _no_market)
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        await run_demo(tmp_path / "out", progress=False, **{"households": 1, "buyers": 1, **options})
    assert list(tmp_path.iterdir()) == []


def test_a_refused_trade_fails_a_check_and_the_demo_still_reports(tmp_path, monkeypatch, capsys):
    # A refused trade (a payment's deadline passed on a loaded machine) ended the demo with one
    # line, "enerdatx: error: 6d2b6fcdd419054d: deadline_passed", and no summary.
    from enerdatx.errors import TransactionRejectedError
    from enerdatx.market.service import MarketService

    real = MarketService.fill_requests
    calls = []

    async def refused_once(self):
        calls.append(self)
        if len(calls) == 1:
            raise TransactionRejectedError("deadline_passed")
        return await real(self)

    monkeypatch.setattr(MarketService, "fill_requests", refused_once)
    output = tmp_path / "out"
    assert main(["demo", "--households", "3", "--buyers", "2", "--output", str(output)]) == 1
    summary = json.loads((output / "summary.json").read_text())
    assert summary["checks"]["no_trade_refused"] is False and summary["checks"]["all_passed"] is False
    assert summary["refused_trades"] == [{"buyer": calls[0].public_key.hex()[:16], "error": "deadline_passed"}]
    assert "FAIL no_trade_refused" in capsys.readouterr().out
