"""Run a 20-peer market on a Dask cluster that is already up, and print what it held as JSON.

The driver of tests/cluster/test_dask_lab_across_namespaces.py: it runs in the scheduler's
network namespace, as a notebook on machine A would, with ``Lab(cluster=Client(address))``.

    python tests/support/namespace_market.py tcp://10.77.0.1:8786
"""

from __future__ import annotations

import json
import sys

from distributed import Client

from enerdatx.cluster import scenarios
from enerdatx.lab import Lab

PEERS, TRADES, PRICE = 20, 40, 5


def main(address: str) -> None:
    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        with Lab(cluster=client, durable=False, settings={"rate_per_second": 1e6, "rate_burst": 1_000_000}) as lab:
            run = scenarios.market(lab, peers=PEERS, trades=TRADES, price=PRICE, timeout=120)
            sizes, owner = list(lab.groups.sizes), dict(lab.groups.owner)
            # Two peers more, after the market, only for the addresses they were given.
            contacts = lab.start(2)
            print(json.dumps({
                "workers": lab.workers,
                "figures": {k: v for k, v in run.figures.items() if isinstance(v, (int, float, str))},
                "trades": run.trades.to_dict("list"),
                "chains": run.chains[["peer", "public_key", "sequence_number"]].to_dict("list"),
                "balances": run.balances.to_dict("list"),
                "sizes": sizes,
                "owner": {str(peer): group for peer, group in owner.items()},
                "contacts": contacts.to_dict("list"),
            }, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
