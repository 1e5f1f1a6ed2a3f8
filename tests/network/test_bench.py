"""The network benchmarks run end to end at a small size and report coherent figures."""

from __future__ import annotations

import json

import pytest

from enerdatx.cli import main


def test_network_benchmark_over_udp_between_two_processes(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "network", "--json", "--transport", "udp", "--transactions", "30", "--no-progress"]
    assert main(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["processes"] == 2 and figures["transactions"] == 30
    assert 0 < figures["baseline_ipv8_round_trip_ms_p50"] <= figures["baseline_ipv8_round_trip_ms_p99"]
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p99"]
    # A transaction is at least one signed round trip, plus two ledger writes.
    assert figures["latency_ms_p50"] > figures["baseline_ipv8_round_trip_ms_p50"]
    assert figures["throughput_tx_per_s"] > 0 and figures["throughput_tx_per_s_no_fsync"] > 0
    assert 0 < figures["latency_ms_p50_no_fsync"] <= figures["latency_ms_p99_no_fsync"]


@pytest.mark.slow
def test_fraud_benchmark_reports_every_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fraud", "--json", "--peers", "8", "16", "--no-progress"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for n in (8, 16):
        assert 0 <= figures[f"seconds_first_proof@{n}"] <= figures[f"seconds_all_honest@{n}"]
        assert figures[f"bytes_sent_per_peer_mean@{n}"] <= figures[f"bytes_sent_per_peer_max@{n}"]
        assert figures[f"bytes_sent_per_peer_mean@{n}"] > 0
    assert figures["growth_peers"] == 2.0


def test_fraud_benchmark_needs_enough_peers(capsys) -> None:
    with pytest.raises(SystemExit) as exited:  # a usage error, as argparse's own are
        main(["bench", "fraud", "--peers", "3"])
    assert exited.value.code == 2
    assert "argument --peers: expected a whole number from 4 to 1,000,000,000, got '3'" in capsys.readouterr().err


def test_fraud_benchmark_refuses_a_size_twice(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: both runs ran, the second one's figures overwrote the first's (keyed "...@4").
    assert main(["bench", "fraud", "--peers", "4", "4"]) == 1
    assert "--peers: each size once (refused, not dropped: 4 repeated)" in capsys.readouterr().err


def test_fraud_benchmark_reports_negative_zero_loss_as_zero(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "packet_loss": -0.0 in the figures. The run itself is replaced: only the option matters here.
    from concurrent.futures import Future

    from enerdatx.bench import fraud

    given: list[tuple] = []

    class Inline:
        def __init__(self, *_args: object, **_kwargs: object) -> None: ...
        def __enter__(self) -> Inline:
            return self
        def __exit__(self, *_exc: object) -> None: ...
        def submit(self, _fn: object, *args: object) -> Future:
            given.append(args)
            done: Future = Future()
            done.set_result({"peers": args[0], "seconds_all_honest": 1.0})
            return done

    monkeypatch.setattr(fraud, "ProcessPoolExecutor", Inline)
    assert main(["bench", "fraud", "--json", "--peers", "4", "--packet-loss", "-0.0"]) == 0
    assert '"packet_loss": 0.0' in capsys.readouterr().out
    assert str(given[0][2]) == "0.0"
