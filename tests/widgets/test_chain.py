from __future__ import annotations

from enerdatx.widgets import ChainExplorer, chain_frame, fraud_frame, trade_graph
from tests.widgets.conftest import fork_genesis, ledger


def test_chain_frame_lists_blocks_with_counterparts_and_validation(peers):
    alice, bob = peers["alice"], peers["bob"]
    names = {chain.public_key: name for name, chain in peers.items()}
    frame = chain_frame(alice, alice.public_key, names)
    assert list(frame.index) == [1, 2]
    assert list(frame["counterparty"]) == ["bob", "bob"]
    assert list(frame["counterpart"]) == ["bob #1", "bob #2"]
    assert list(frame["validation"]) == ["valid", "partial_next"]
    # bob's view of his own chain: two agreements, then a proposal carol has not answered in his store yet
    bobs = chain_frame(bob, bob.public_key, names)
    assert list(bobs["link_seq"]) == [1, 2, 0]
    assert list(bobs["counterpart"]) == ["alice #1", "alice #2", "carol #1"]


def test_chain_frame_marks_a_proposal_without_agreement():
    alice, bob = ledger(1), ledger(2)
    alice.propose(bob.public_key, "edx.test.pay", {"amount": 1})
    frame = chain_frame(alice, alice.public_key)
    assert frame.loc[1, "counterpart"] == "awaiting agreement"
    assert frame.loc[1, "counterparty"] == bob.public_key.hex()[:8]


def test_trade_graph_has_an_edge_per_trading_pair(peers):
    figure = trade_graph(peers["bob"].store, {c.public_key: n for n, c in peers.items()})
    edges, nodes = figure.data
    assert sorted(nodes.text) == ["alice", "bob", "carol"]
    assert sum(x is None for x in edges.x) == 2  # alice->bob and bob->carol
    assert "#d62728" not in nodes.marker.color


def test_explorer_follows_viewer_and_owner(peers):
    explorer = ChainExplorer(peers)
    assert explorer.viewer.value == "alice"
    assert explorer.owner.value == peers["alice"].public_key
    assert "bob #2" in explorer.blocks.value
    assert explorer.error == ""
    explorer.viewer.value = "carol"
    assert [label for label, _ in explorer.owner.options] == ["carol", "bob"]
    explorer.owner.value = peers["bob"].public_key
    assert "carol #1" in explorer.blocks.value and "<td>partial</td>" in explorer.blocks.value
    assert explorer.info.startswith("bob: 1 blocks held by carol")


def test_explorer_shows_fraud_proofs_and_colours_the_forker(peers):
    alice = peers["alice"]
    mallory = ledger(9)
    first, second = fork_genesis(mallory.identity)
    assert not alice.receive(first).is_invalid
    assert alice.receive(second).reasons == ("fork",)
    names = {c.public_key: n for n, c in peers.items()} | {mallory.public_key: "mallory"}
    proofs = fraud_frame(alice.store, names)
    assert proofs.to_dict("records") == [
        {"forker": "mallory", "seq": 1, "block_a": min(first.hash, second.hash).hex()[:16],
         "block_b": max(first.hash, second.hash).hex()[:16], "verified": True}
    ]
    explorer = ChainExplorer({**peers, "mallory": mallory})
    assert "Fraud proofs held" in explorer.proofs.value and "mallory" in explorer.proofs.value
    nodes = explorer.figure.data[1]
    assert nodes.marker.color[list(nodes.text).index("mallory")] == "#d62728"


def test_explorer_without_peers_says_so():
    explorer = ChainExplorer({})
    assert explorer.blocks.value == "<i>no peers yet</i>"
    assert explorer.figure is None


def test_explorer_emptied_forgets_the_last_chains_message(peers):
    # After Stop all the table said "no peers yet" under "alice: 3 blocks held by alice".
    explorer = ChainExplorer(peers)
    assert explorer.info.startswith("alice: ")
    explorer.set_ledgers({})
    explorer.refresh_button.click()
    assert explorer.blocks.value == "<i>no peers yet</i>"
    assert explorer.info == "no peers yet" and explorer.error == ""
