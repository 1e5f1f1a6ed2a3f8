"""``enerdatx bench market --workers N`` and ``bench fraud --workers N`` report their figures."""

from __future__ import annotations

import json

import pytest

from enerdatx.cli import main


@pytest.mark.slow
def test_market_benchmark_on_workers_reports_the_single_process_figure_beside(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "market", "--json", "--peers", "8", "--trades", "8", "--workers", "2", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    figures = json.loads(out)
    for prefix in ("single_process", "workers"):
        assert figures[f"{prefix}_failed_trades"] == 0
        assert figures[f"{prefix}_trades_per_s"] > 0
        assert 0 < figures[f"{prefix}_trade_latency_p50_ms"] <= figures[f"{prefix}_trade_latency_p99_ms"]
        assert figures[f"{prefix}_cpu_ms_per_trade"] > 0
        assert figures[f"{prefix}_file_create_us"] > 0
    # The dashboard link is printed while the cluster is up; in the figures it led to a closed port.
    assert figures["workers"] == 2 and "dashboard" not in figures
    assert "Dask dashboard, while the workers run: http://127.0.0.1:" in err


@pytest.mark.slow
def test_fraud_benchmark_on_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fraud", "--json", "--peers", "16", "--workers", "2", "--peer", "light"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["honest_with_proof@16"] == 15 and figures["light@16"] is True
    assert figures["memory_per_peer_bytes@16"] > 0 and figures["workers"] == 2


@pytest.mark.slow
def test_fraud_benchmark_with_packet_loss_on_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fraud", "--json", "--peers", "16", "--workers", "2", "--peer", "full",
                 "--packet-loss", "0.1", "--no-progress"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["packet_loss"] == 0.1 and figures["workers"] == 2
    assert figures["honest_with_proof@16"] == 15  # every honest peer, lost packets notwithstanding
    assert figures["packets_dropped@16"] > 0  # dropped on arrival, in the workers


def test_fraud_benchmark_refuses_a_loss_rate_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's: before any cluster starts
        main(["bench", "fraud", "--json", "--peers", "8", "--workers", "2", "--packet-loss", "1.5"])
    assert exited.value.code == 2
    assert "--packet-loss: expected a share from 0 up to 1 (not 1 itself), e.g. 0.2, got '1.5'" in capsys.readouterr().err
