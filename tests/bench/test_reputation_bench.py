import json

import pytest

from enerdatx.cli import main


def test_reputation_benchmark_runs_small_and_its_engines_agree(capsys):
    arguments = ["--peers", "20", "--blocks", "400", "--networkx-netflow", "--no-progress", "--json"]
    assert main(["bench", "reputation", *arguments]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["blocks"] == 400 and figures["pairs"] == 200
    assert figures["netflow_engines_agree"] is True
    assert 0 < figures["netflow_positive_peers"] < 20
    assert figures["temporal_pagerank_positive_peers"] > 0


def test_reputation_benchmark_refuses_an_empty_market(capsys):
    with pytest.raises(SystemExit) as exited:  # a usage error: argparse exits 2
        main(["bench", "reputation", "--peers", "1", "--blocks", "400", "--json"])
    assert exited.value.code == 2
    assert "--peers: expected a whole number from 2 to" in capsys.readouterr().err


def test_reputation_benchmark_refuses_more_peers_than_memory_holds(capsys, monkeypatch):
    # Before: no check; 100,000 peers (about 8 GB of ledgers) started signing whatever the machine had.
    from enerdatx.bench import limits

    monkeypatch.setattr(limits, "available_memory", lambda: 2**30)
    assert main(["bench", "reputation", "--peers", "100000", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "100,000 peers (an in-memory ledger each) need about 7.6 GiB" in err and "1.0 GiB are available" in err
