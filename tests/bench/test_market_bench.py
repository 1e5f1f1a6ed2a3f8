import json

import pytest

from enerdatx.bench.market import PRICE
from enerdatx.cli import main


@pytest.mark.parametrize("transport", ["memory", "udp2"])
def test_market_benchmark_settles_every_trade_once(capsys, transport):
    argv = ["bench", "market", "--json", "--peers", "6", "--trades", "9", "--transport", transport, "--no-progress"]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["peers"], figures["sellers"], figures["buyers"], figures["trades"]) == (6, 3, 3, 9)
    assert figures["transport"] == transport
    assert figures["failed_trades"] == figures["failed_bare_tx"] == 0 and figures["first_failure"] is None
    assert 0 < figures["trade_latency_p50_ms"] <= figures["trade_latency_p99_ms"]
    assert 0 < figures["baseline_bare_latency_p50_ms"] <= figures["baseline_bare_latency_p99_ms"]
    assert figures["solo_trades"] == 3 and 0 < figures["solo_trade_latency_p50_ms"] <= figures["solo_trade_latency_p99_ms"]
    # The buyers' chains hold 9 + 3 payments of the benchmark's price: each trade settled once, in full.
    assert figures["tokens_paid"] == (9 + 3) * PRICE
    assert figures["file_create_us"] > 0


def test_market_benchmark_refuses_more_trades_than_distinct_pairs(capsys):
    assert main(["bench", "market", "--peers", "6", "--trades", "10", "--no-progress"]) == 1
    assert capsys.readouterr().err.startswith("enerdatx: error: --trades 10: at most 9 distinct trades")


def test_market_benchmark_without_solo_trades_reports_no_solo_latency(capsys):
    # --solo-trades 0 is allowed: there is then no solo sample, and its quantiles are null.
    argv = ["bench", "market", "--json", "--peers", "4", "--trades", "2", "--solo-trades", "0", "--no-progress"]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["solo_trades"] == 0
    assert figures["solo_trade_latency_p50_ms"] is None and figures["solo_baseline_bare_latency_p50_ms"] is None
    assert figures["tokens_paid"] == 2 * PRICE and figures["trade_latency_p50_ms"] > 0
    # The plain (table) output prints the same run without a crash.
    assert main(argv[:2] + argv[3:]) == 0
    assert "solo_trade_latency_p50_ms" in capsys.readouterr().out
