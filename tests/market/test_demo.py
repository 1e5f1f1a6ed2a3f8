"""`enerdatx demo`: the whole market on this machine, through the command line."""

from __future__ import annotations

import json

import pytest

from enerdatx.cli import main


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
    (["--households", "0"], "--households: expected a whole number from 1 to 250, got '0'"),
    (["--buyers", "-3"], "--buyers: expected a whole number from 1 to 250, got '-3'"),
    (["--output", "{file}"], "exists and is not a directory"),
    (["--output", ""], "expected a directory path"),
])
def test_bad_demo_arguments_are_refused_before_any_peer_starts(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *(a.format(file=tmp_path / "file") for a in args)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
