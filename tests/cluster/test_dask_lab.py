"""Lab(workers=2): peers on two Dask worker processes, real UDP on 127.0.0.1 between them."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import psutil
import pytest

from enerdatx.cluster import DaskLab, scenarios
from enerdatx.errors import ConfigurationError, PeerProcessError
from enerdatx.lab import Lab
from tests.support.lab_options import BAD_LAB_OPTIONS

SETTINGS = {"rate_per_second": 1e6, "rate_burst": 1_000_000}


@pytest.fixture(scope="module")
def lab() -> Iterator[DaskLab]:
    with Lab(workers=2, durable=False, settings=SETTINGS) as made:
        yield made


def test_workers_makes_a_dask_lab_with_a_loopback_dashboard(lab: DaskLab) -> None:
    assert isinstance(lab, DaskLab) and len(lab.workers) == 2
    assert lab.dashboard_link.startswith("http://127.0.0.1:")
    assert lab.dashboard_link in repr(lab) and lab.dashboard_link in lab._repr_html_()


def test_a_market_of_20_peers_across_two_workers(lab: DaskLab) -> None:
    run = scenarios.market(lab, peers=20, trades=40, price=5)
    assert run.figures["failed_trades"] == 0 and len(run.trades) == 40
    assert lab.groups.sizes == [10, 10]
    owner = lab.groups.owner
    keys = dict(zip(run.chains["public_key"], run.chains["peer"], strict=False))
    sellers = [keys[seller] for seller in run.trades["seller"]]
    assert any(owner[b] != owner[s] for b, s in zip(run.trades["buyer"], sellers, strict=True))  # across workers
    # Each worker buys and sells: with the first half selling, one worker did all the buying, at
    # half the concurrency asked for.
    assert {owner[b] for b in run.trades["buyer"]} == {owner[s] for s in sellers} == {0, 1}
    # Chains: every buyer holds one proposal per trade, every seller one agreement, in sequence.
    chains = run.chains
    for peer, chain in chains.groupby("peer"):
        assert list(chain["sequence_number"]) == list(range(1, len(chain) + 1)), peer
    bought = run.trades.groupby("buyer").size()
    sold = collections.Counter(sellers)
    balances = run.balances.set_index("peer")
    for buyer, count in bought.items():
        assert balances.loc[buyer, "spent"] == 5 * count and balances.loc[buyer, "earned"] == 0
    for seller, count in sold.items():
        assert balances.loc[seller, "earned"] == 5 * count and balances.loc[seller, "spent"] == 0
    assert balances["spent"].sum() == balances["earned"].sum() == 5 * 40
    assert balances["complete"].all()


def test_a_bad_number_of_peers_is_refused_before_any_worker_is_asked(lab: DaskLab) -> None:
    before = list(lab.groups.sizes)
    for n in (-1, 1.5, "2", True):  # True started one peer on a worker, "2" failed there with a TypeError
        with pytest.raises(ConfigurationError, match="n is a whole number of peers, 0 or more"):
            lab.start(n)  # type: ignore[arg-type]
    assert lab.groups.sizes == before
    with pytest.raises(ConfigurationError, match=r"10,000,000 more peers need about 4,882.8 GiB"):
        lab.start(10**7)  # its own LocalCluster runs on this machine
    assert lab.groups.sizes == before


def test_accept_and_map_refuse_what_no_group_can_do(lab: DaskLab) -> None:
    for block_type in (5, "", "x" * 65, "tab\there"):  # 5 was taken silently on every worker
        with pytest.raises(ConfigurationError, match="no block can be of type"):
            lab.accept(block_type)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a PeerGroup has no method 'nope'"):
        lab.groups.map("nope")  # an AttributeError from Dask
    with pytest.raises(ConfigurationError, match="a PeerGroup has no method '_market'"):
        lab.groups.map("_market", [(0,), (1,)])
    with pytest.raises(ConfigurationError, match=r"one argument tuple per group \(2\), not 1"):
        lab.groups.map("chains", [()])  # zip's ValueError


def test_a_closed_lab_says_so() -> None:
    with Lab(workers=1, durable=False) as closed:
        closed.start(1)
        assert closed.balances().empty  # its one peer runs no market (was a MarketError from the worker)
    for use in (lambda: closed.start(1), closed.chains, closed.balances, lambda: closed.accept("ping")):
        with pytest.raises(ConfigurationError, match="this lab is closed"):  # AttributeError: 'NoneType'
            use()
    closed.close()  # again: nothing to do
    assert "0 peers" in repr(closed)  # the repr of a closed lab still works


@pytest.mark.slow
def test_a_lost_worker_is_named_and_the_lab_still_closes() -> None:
    # Dask said "Unable to contact Actor's worker" (an OSError) for a call in flight, then
    # "Worker holding Actor was lost" (a RuntimeError) for every call, close() included.
    lab = Lab(workers=2, durable=False, settings=SETTINGS)
    try:
        lab.start(4)
        victim = lab.workers[1]
        pid = lab.client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        psutil.wait_procs([psutil.Process(pid)], timeout=10)
        # A call the scheduler relays before it has noticed waits out Dask's connect timeout (30 s).
        deadline = time.monotonic() + 30
        while victim in lab.client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        for use in (lab.chains, lambda: lab.start(2)):
            with pytest.raises(PeerProcessError, match=f"the Dask worker {victim} was lost .*, and with it 2 of"):
                use()
    finally:
        started = time.monotonic()
        lab.close()  # stops the peers on the worker that lives, then the cluster; no error
        assert time.monotonic() - started < 30
    with pytest.raises(ConfigurationError, match="this lab is closed"):
        lab.chains()


_SCRIPT_WITHOUT_MAIN_GUARD = """
from enerdatx.lab import Lab
Lab(workers=1, durable=False)
"""


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path) -> None:
    # Dask's spawned worker imports the script again and starts a cluster of its own; all the
    # script heard was "RuntimeError: Nanny failed to start." under pages of tracebacks.
    script = tmp_path / "no_guard.py"
    script.write_text(_SCRIPT_WITHOUT_MAIN_GUARD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("enerdatx.errors.PeerProcessError: the local Dask cluster did not start")
    assert 'make the Lab(workers=N) under `if __name__ == "__main__":`' in last_line
    assert "a Dask worker was asked to start a cluster of its own" in done.stderr  # what the worker said


def _children() -> set[int]:
    return {child.pid for child in psutil.Process(os.getpid()).children(recursive=True)}


def test_bad_options_are_refused_before_a_cluster_starts() -> None:
    before = _children()
    # light "no" ran light peers (any string is true); the in-process Lab has no such option.
    for options, message in [*BAD_LAB_OPTIONS, ({"light": "no"}, "light must be True or False, not 'no'")]:
        with pytest.raises(ConfigurationError, match=message):
            Lab(workers=2, **options)
        assert _children() == before, options  # "settings" failed on the workers, "seed" in a future


def test_a_lab_that_fails_to_place_its_groups_stops_the_cluster_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything failing after the LocalCluster started (a group, a cluster without workers) left
    # its scheduler and worker processes running until the interpreter exited.
    def refuse(*args: object) -> None:
        raise RuntimeError("no groups today")

    before = _children()
    monkeypatch.setattr("enerdatx.cluster.dasklab.Groups", refuse)
    with pytest.raises(RuntimeError, match="no groups today"):
        Lab(workers=1)
    deadline = time.monotonic() + 10
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children() - before == set()


def test_nothing_listens_beyond_loopback(lab: DaskLab) -> None:
    if sum(lab.groups.sizes) == 0:
        lab.start(4)
    me = psutil.Process(os.getpid())
    processes = [me, *me.children(recursive=True)]
    bound = []
    for process in processes:
        for connection in process.net_connections(kind="inet"):
            if connection.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and connection.laddr:
                bound.append((process.pid, connection.laddr.ip, connection.laddr.port))
    worker_pids = {p.pid for p in processes} - {me.pid}
    assert {pid for pid, _, _ in bound} & worker_pids  # the workers' sockets were seen at all
    assert [b for b in bound if b[1] not in ("127.0.0.1", "::1")] == []


def test_the_same_fraud_scenario_runs_on_a_cluster_given_by_its_client() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        with Lab(tempfile.mkdtemp(), cluster=client, durable=False) as lab:
            assert isinstance(lab, DaskLab) and len(lab.workers) == 2
            run = scenarios.fraud(lab, peers=16, refusals=True)
            proofs = lab.fraud_proofs()
        assert client.status == "running"  # a cluster the lab did not start stays up
    with pytest.raises(ConfigurationError, match="the Dask client is closed and reaches no scheduler"):
        Lab(cluster=client)  # a KeyError: 'workers', from the empty scheduler_info() of a closed client
    assert run.figures["groups"] == 2 and run.figures["honest_with_proof"] == 15
    assert set(run.times["group"]) == {0, 1}  # peers on both workers learnt it
    assert sorted(proofs["peer"]) == sorted(run.times["peer"]) and proofs["forker"].nunique() == 1
    assert run.figures["refused_after_detection"] == 15  # every honest peer, on either worker, says no
