"""`enerdatx demo`: the whole market on this machine, through the command line."""

from __future__ import annotations

import json

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
