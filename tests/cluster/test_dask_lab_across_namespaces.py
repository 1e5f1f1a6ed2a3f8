"""Lab(cluster=Client(...)) with the scheduler and two workers on three hosts: network namespaces.

docs/network.md tells people to spread peers over machines with ``dask scheduler`` on one host,
``dask worker --host`` on others and ``Lab(cluster=Client(address))`` in the notebook. This test
runs exactly those commands, each in a network namespace of its own (three "machines" on one
bridge, 10.77.0.0/24), so nothing of the cluster can talk over 127.0.0.1 and every datagram
between the peers of the two workers crosses the bridge. It needs root (creating namespaces);
elsewhere it is skipped. A fault in the kernel's netem is not used: this kernel has none.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "support" / "namespace_market.py"
SCHEDULER_IP, WORKER_IPS = "10.77.0.1", ("10.77.0.2", "10.77.0.3")
SCHEDULER = f"tcp://{SCHEDULER_IP}:8786"
PRICE, TRADES = 5, 40


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Hosts:
    """A bridge in a hub namespace and three host namespaces on it; all of it removed on close."""

    def __init__(self) -> None:
        tag = f"edx{os.getpid() % 100000}"
        self.hub = f"{tag}hub"
        self.hosts = [f"{tag}h{i}" for i in (1, 2, 3)]
        self.ports = [f"{tag}p{i}" for i in (1, 2, 3)]  # the hub's end of each host's cable
        self.processes: list[subprocess.Popen[bytes]] = []
        self.made: list[str] = []

    def build(self) -> None:
        _ip("netns", "add", self.hub)
        self.made.append(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for host, port, address in zip(self.hosts, self.ports, (SCHEDULER_IP, *WORKER_IPS), strict=True):
            _ip("netns", "add", host)
            self.made.append(host)
            _ip("link", "add", port, "netns", self.hub, "type", "veth", "peer", "name", "eth0", "netns", host)
            _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
            _ip("-n", host, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", host, "link", "set", "eth0", "up")
            _ip("-n", host, "link", "set", "lo", "up")

    def spawn(self, host: str, *command: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(["ip", "netns", "exec", host, *command], stdout=out, stderr=subprocess.STDOUT,
                                       cwd=ROOT)
        self.processes.append(process)
        return process

    def run(self, host: str, *command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", host, *command], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)

    def udp_datagrams(self, host: str) -> tuple[int, int]:
        """(received, sent) UDP datagrams in one namespace: /proc/net/snmp is per namespace."""
        lines = [line.split() for line in self.run(host, "cat", "/proc/net/snmp", timeout=10).stdout.splitlines()
                 if line.startswith("Udp:")]
        row = dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))
        return row["InDatagrams"], row["OutDatagrams"]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for name in reversed(self.made):  # deleting a namespace removes its end of every veth pair
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@pytest.fixture()
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's ip")
    made = Hosts()
    try:
        try:
            made.build()
        except subprocess.CalledProcessError as error:
            pytest.skip(f"cannot create network namespaces here: {error.stderr.decode().strip()}")
        yield made
    finally:
        made.close()


def test_a_market_across_a_scheduler_and_two_workers_on_three_hosts(hosts: Hosts, tmp_path: Path) -> None:
    scheduler_host, *worker_hosts = hosts.hosts
    python = sys.executable
    hosts.spawn(scheduler_host, python, "-m", "dask", "scheduler", "--host", SCHEDULER_IP,
                "--port", "8786", "--dashboard-address", f"{SCHEDULER_IP}:8787", log=tmp_path / "scheduler.log")
    for host, address in zip(worker_hosts, WORKER_IPS, strict=True):
        hosts.spawn(host, python, "-m", "dask", "worker", SCHEDULER, "--host", address,
                    "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path / host),
                    log=tmp_path / f"{host}.log")
    before = {host: hosts.udp_datagrams(host) for host in worker_hosts}
    driven = hosts.run(scheduler_host, python, str(DRIVER), SCHEDULER, timeout=300)
    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(tmp_path.glob("*.log")))
    assert driven.returncode == 0, f"{driven.stderr[-4000:]}\n{logs}"
    run = json.loads(driven.stdout.splitlines()[-1])

    # The workers are the two worker hosts, and so are the peers' UDP addresses: nothing on loopback.
    assert sorted(address.split("//")[1].rsplit(":", 1)[0] for address in run["workers"]) == sorted(WORKER_IPS)
    assert set(run["contacts"]["host"]) == set(WORKER_IPS)
    assert run["sizes"] == [10, 10]

    assert run["figures"]["failed_trades"] == 0 and len(run["trades"]["buyer"]) == TRADES
    owner = {int(peer): group for peer, group in run["owner"].items()}
    keys = dict(zip(run["chains"]["public_key"], run["chains"]["peer"], strict=True))
    sellers = [keys[seller] for seller in run["trades"]["seller"]]
    buyers = run["trades"]["buyer"]
    assert any(owner[b] != owner[s] for b, s in zip(buyers, sellers, strict=True))  # across hosts
    assert {owner[b] for b in buyers} == {owner[s] for s in sellers} == {0, 1}
    chains: dict[int, list[int]] = collections.defaultdict(list)
    for peer, sequence_number in zip(run["chains"]["peer"], run["chains"]["sequence_number"], strict=True):
        chains[peer].append(sequence_number)
    for peer, numbers in chains.items():
        assert numbers == list(range(1, len(numbers) + 1)), peer
    bought, sold = collections.Counter(buyers), collections.Counter(sellers)
    balances = {peer: row for peer, *row in zip(*(run["balances"][c] for c in ("peer", "spent", "earned", "complete")),
                                                strict=True)}
    for peer, (spent, earned, complete) in balances.items():
        assert (spent, earned) == (PRICE * bought[peer], PRICE * sold[peer]), peer
        assert complete, peer
    assert sum(row[0] for row in balances.values()) == PRICE * TRADES

    # The trades went over UDP (Dask itself talks TCP); a buyer on one host paid a seller on the
    # other, and between the two namespaces the bridge is the only way.
    for host in worker_hosts:
        received, sent = (after - first for after, first in zip(hosts.udp_datagrams(host), before[host], strict=True))
        assert received >= 2 * TRADES and sent >= 2 * TRADES, (host, received, sent)
