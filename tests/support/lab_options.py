"""Options both labs refuse before anything starts: Lab() in one process and Lab(workers=N).

tests/network/test_lab.py and tests/cluster/test_dask_lab.py check each; the comment says how
the option failed before it was checked up front.
"""

from __future__ import annotations

from typing import Any

BAD_LAB_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"transport": "udp", "packet_loss": "0.1"}, "packet_loss must be in"),  # a TypeError from <=
    ({"transport": "udp", "packet_loss": True}, "packet_loss must be in"),
    ({"seed": "x"}, "seed must be a whole number or None"),  # random.Random("x") here, "x" + 1 on workers
    ({"seed": 1.5}, "seed must be a whole number or None"),
    ({"settings": "abc"}, "settings must be a dict"),  # dict("abc") failed with a ValueError
    ({"settings": {"nope": 1}}, "unknown TrustChainSettings field 'nope'"),  # a TypeError
    ({"settings": {"ledger": 5}}, "ledger is wired by the peer itself"),  # an AttributeError at the start
    ({"settings": {"crawl_page_size": 0}}, "crawl_page_size must be a whole number, 1 or more"),  # no crawl ended
    ({"settings": {"received_commit_blocks": 0}}, "received_commit_blocks must be a whole number, 1 or more"),
    ({"settings": {"received_commit_delay": 61}}, "received_commit_delay must be 0 to 60 seconds"),
    ({"durable": "no"}, "durable must be True or False, not 'no'"),  # any string is true: durable peers
    ({"durable": None}, "durable must be True or False"),
    ({"progress": 5}, "progress must be True, False or None"),  # taken silently
    ({"services": 5}, "services is None or a function of a peer"),  # "'int' object is not callable" at each start
]
