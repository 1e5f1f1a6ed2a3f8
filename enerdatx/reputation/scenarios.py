"""Attack scenarios on in-process TrustChain ledgers: what the attacker gains, when honest peers notice.

Every scenario is reproducible from its seed: identities, trades and gossip partners all come
from one ``random.Random(seed)``, and time is a simulated clock that advances one ``round``
per gossip round. Blocks cross a simulated wire (encoded and decoded) and every peer
validates what it receives; gossip is epidemic pull: each round, every honest peer asks one
random peer for the blocks and fraud proofs it has stored since they last spoke.

The scenarios (docs/reputation.md, "Attacks"):

* :func:`sybil_region`: fake identities trading among themselves plus a little real work;
* :func:`double_spender`: a peer forks its chain to spend the same balance twice;
* :func:`key_withholder`: a seller takes payments and countersigns with unusable keys;
* :func:`free_rider`: a peer copies ciphertext CIDs from listings without paying.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from enerdatx.crypto import Identity, decrypt_data, encrypt_data, new_data_key, seal_to
from enerdatx.errors import DataVerificationError, LedgerError
from enerdatx.reputation.view import ReputationView
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain

__all__ = [
    "LedgerNetwork",
    "ScenarioResult",
    "double_spender",
    "free_rider",
    "key_withholder",
    "sybil_region",
]

PAYMENT = "edx.payment"
COMPLAINT = "edx.complaint"
LISTING = "edx.listing"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ROUND_MS = 60_000


@dataclass
class ScenarioResult:
    """What one run of a scenario measured; ``timeline`` has one dict per round."""

    scenario: str
    seed: int
    parameters: dict[str, Any]
    attacker_gain: int | float
    detected_first_round: int | None = None  # first round an honest peer held proof
    detected_all_round: int | None = None  # first round every honest peer held proof
    timeline: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


class _Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class LedgerNetwork:
    """In-process peers that trade over a simulated wire and gossip by epidemic pull."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = _Clock(START_MS)
        self.round = 0
        self.peers: list[TrustChain] = []
        self._log: dict[bytes, list[HalfBlock]] = {}  # per peer: blocks in the order it stored them
        self._cursor: dict[tuple[bytes, bytes], int] = {}  # (puller, source) -> log entries seen

    def add_peer(self, identity: Identity | None = None) -> TrustChain:
        """A new ledger that countersigns payments (market checks left to the scenario)."""
        identity = identity or Identity.from_seed(self.rng.randbytes(32))
        ledger = TrustChain(identity, BlockStore(fsync=False), clock=self.clock)
        ledger.register_policy(PAYMENT, lambda ledger, proposal: None)
        log = self._log.setdefault(identity.public_key, [])
        ledger.subscribe(log.append)
        self.peers.append(ledger)
        return ledger

    def trade(
        self, buyer: TrustChain, seller: TrustChain, transaction: dict[str, Any], agreement: dict | None = None
    ) -> tuple[HalfBlock, HalfBlock]:
        """The buyer proposes a payment, the seller crawls the buyer's chain and countersigns.

        Raises what the seller's ledger raises when it refuses (a fork it knows of, a
        proposal that contradicts blocks it holds).
        """
        proposal = buyer.propose(seller.public_key, PAYMENT, transaction)
        missing = seller.missing_before(proposal)
        if missing:
            crawled = buyer.store.chain(buyer.public_key, missing.start, missing.stop - 1)
            seller.receive_many([_wire(block) for block in crawled])
        signed = seller.countersign(_wire(proposal), agreement)
        buyer.receive(_wire(signed))
        return proposal, signed

    def gossip(self, pullers: list[TrustChain]) -> None:
        """One round: each puller takes what one random other peer stored since they last spoke."""
        self.round += 1
        self.clock.now += ROUND_MS
        for puller in pullers:
            source = self.rng.choice([peer for peer in self.peers if peer is not puller])
            key = (puller.public_key, source.public_key)
            log = self._log[source.public_key]
            new, self._cursor[key] = log[self._cursor.get(key, 0) :], len(log)
            with puller.store.transaction(durable=False):
                for block in new:
                    puller.receive(_wire(block))
            for proof in source.store.fraud_proofs():
                puller.receive_fraud_proof(FraudProof.decode(proof.encode()))


def _wire(block: HalfBlock) -> HalfBlock:
    return HalfBlock.decode(block.encode())


def _holders_of_proof(peers: list[TrustChain], public_key: bytes) -> int:
    return sum(peer.is_fraudulent(public_key) for peer in peers)


# --- Sybil region ------------------------------------------------------------------------


def sybil_region(
    seed: int = 1,
    *,
    honest: int = 12,
    sybils: int = 8,
    rounds: int = 12,
    honest_trades_per_round: int = 6,
    fake_trades_per_round: int = 10,
    real_trades: int = 3,
    fake_amount: int = 10_000,
) -> ScenarioResult:
    """Sybils trade huge fake amounts among themselves and sell a little to honest peers.

    Gain: the highest NetFlow score any Sybil reaches in any honest peer's view, against the
    real work the region did for honest peers (NetFlow bounds the first by the second).
    Nothing is "detected": the region is simply worth no more than its real work.
    """
    network = LedgerNetwork(seed)
    good = [network.add_peer() for _ in range(honest)]
    fake = [network.add_peer() for _ in range(sybils)]
    views = [ReputationView(peer) for peer in good]
    real_work = 0
    timeline = []
    real_rounds = set(network.rng.sample(range(rounds), min(real_trades, rounds)))
    for round_ in range(rounds):
        for _ in range(honest_trades_per_round):
            buyer, seller = network.rng.sample(good, 2)
            network.trade(buyer, seller, {"amount": network.rng.randint(1, 50)})
        if sybils > 1:
            for _ in range(fake_trades_per_round):
                buyer, seller = network.rng.sample(fake, 2)
                network.trade(buyer, seller, {"amount": fake_amount})
        if round_ in real_rounds:
            amount = network.rng.randint(1, 50)
            network.trade(network.rng.choice(good), network.rng.choice(fake), {"amount": amount})
            real_work += amount
        network.gossip(good + fake)
        timeline.append({"round": network.round, "real_work": real_work, **_sybil_standing(views, fake, good)})
    final = timeline[-1]
    return ScenarioResult(
        "sybil_region",
        seed,
        {"honest": honest, "sybils": sybils, "rounds": rounds, "fake_trades_per_round": fake_trades_per_round},
        attacker_gain=final["max_sybil_netflow"],
        timeline=timeline,
        figures={"real_work": real_work, **final},
    )


def _sybil_standing(views: list[ReputationView], fake: list[TrustChain], good: list[TrustChain]) -> dict[str, Any]:
    """The Sybils' best NetFlow and their share of Temporal PageRank, over all honest views."""
    fake_keys = {peer.public_key for peer in fake}
    max_netflow, sybil_rank, honest_rank = 0, 0.0, 0.0
    for view in views:
        netflow, ranks = view.netflow(), view.pagerank()
        max_netflow = max([max_netflow, *(netflow.get(key, 0) for key in fake_keys)])
        sybil_rank += sum(rank for key, rank in ranks.items() if key in fake_keys)
        honest_rank += sum(rank for key, rank in ranks.items() if key not in fake_keys)
    return {
        "max_sybil_netflow": max_netflow,
        "mean_sybil_pagerank_share": sybil_rank / len(views) / max(len(fake), 1),
        "mean_honest_pagerank_share": honest_rank / len(views) / max(len(good) - 1, 1),
    }


# --- Double spender ------------------------------------------------------------------------


def double_spender(
    seed: int = 1, *, honest: int = 16, rounds: int = 15, balance: int = 100, attempts_per_round: int = 2
) -> ScenarioResult:
    """The attacker spends its whole balance twice from two branches of one chain, then keeps buying.

    Gain: what honest sellers accepted beyond the balance. Detection: the rounds until the
    first and until every honest peer holds the fraud proof; after that every honest seller
    refuses the attacker (checked each round by its attempts).
    """
    network = LedgerNetwork(seed)
    good = [network.add_peer() for _ in range(honest)]
    identity = Identity.from_seed(network.rng.randbytes(32))
    attacker = network.add_peer(identity)
    # The clone: the same key and a copy of the chain so far (empty), a separate store. The
    # attacker gossips only its first branch; the second spreads from those who hold it.
    clone = TrustChain(identity, BlockStore(fsync=False), clock=network.clock)
    first, second = network.rng.sample(good, 2)
    spent = 0
    for branch, seller in ((attacker, first), (clone, second)):
        network.trade(branch, seller, {"amount": balance})
        spent += balance
    timeline = []
    first_round = all_round = None
    for _ in range(rounds):
        for attempt in range(attempts_per_round):
            seller = network.rng.choice(good)
            try:
                network.trade((attacker, clone)[attempt % 2], seller, {"amount": balance})
                spent += balance
            except LedgerError:
                pass  # refused: the seller holds the proof, or a block that contradicts this one
        network.gossip(good)
        holders = _holders_of_proof(good, identity.public_key)
        if holders and first_round is None:
            first_round = network.round
        if holders == len(good) and all_round is None:
            all_round = network.round
        timeline.append({"round": network.round, "gain": spent - balance, "honest_with_proof": holders})
    return ScenarioResult(
        "double_spender",
        seed,
        {"honest": honest, "rounds": rounds, "balance": balance, "attempts_per_round": attempts_per_round},
        attacker_gain=spent - balance,
        detected_first_round=first_round,
        detected_all_round=all_round,
        timeline=timeline,
        figures={"refused_after_detection": _refusals(network, good, attacker)},
    )


def _refusals(network: LedgerNetwork, good: list[TrustChain], attacker: TrustChain) -> int:
    """How many honest sellers refuse one more payment from the attacker."""
    refused = 0
    for seller in good:
        try:
            network.trade(attacker, seller, {"amount": 1})
        except LedgerError:
            refused += 1
    return refused


# --- Seller without a usable key ------------------------------------------------------------


def key_withholder(
    seed: int = 1, *, honest: int = 12, rounds: int = 12, buys_per_round: int = 2, price: int = 20
) -> ScenarioResult:
    """A seller countersigns payments with a sealed "key" that opens to nothing useful.

    Each victim finds out at once (the key does not decrypt the data) and records a
    complaint on its own chain; gossip spreads complaints, and an honest buyer refuses a
    seller against whom it holds a complaint by itself or by a peer of positive NetFlow in
    its view. Gain: payments taken for unusable keys. Detection: rounds until the first
    complaint and until every honest peer holds one.
    """
    network = LedgerNetwork(seed)
    good = [network.add_peer() for _ in range(honest)]
    scammer = network.add_peer()
    views = {peer.public_key: ReputationView(peer) for peer in good}
    data_key = new_data_key()
    ciphertext = encrypt_data(data_key, b"readings")
    timeline = []
    gain = 0
    first_round = all_round = None
    for _ in range(rounds):
        for _ in range(buys_per_round):
            buyer = network.rng.choice(good)
            if _distrusts(buyer, views[buyer.public_key], scammer.public_key):
                continue
            # Honest sellers seal the data key to the buyer; this one seals garbage.
            _, agreement = network.trade(
                buyer, scammer, {"amount": price}, {"amount": price, "sealed_key": seal_to(buyer.public_key, b"junk")}
            )
            gain += price
            try:
                decrypt_data(buyer.identity.unseal(agreement.transaction["sealed_key"]), ciphertext)
            except DataVerificationError:
                buyer.record(COMPLAINT, {"against": scammer.public_key, "agreement": agreement.hash})
        for peer in good:  # honest peers also trade among themselves, so NetFlow has a base
            network.trade(peer, network.rng.choice([other for other in good if other is not peer]), {"amount": 5})
        network.gossip(good + [scammer])
        holders = sum(bool(_complaints(peer, scammer.public_key)) for peer in good)
        if holders and first_round is None:
            first_round = network.round
        if holders == len(good) and all_round is None:
            all_round = network.round
        timeline.append({"round": network.round, "gain": gain, "honest_with_complaint": holders})
    return ScenarioResult(
        "key_withholder",
        seed,
        {"honest": honest, "rounds": rounds, "buys_per_round": buys_per_round, "price": price},
        attacker_gain=gain,
        detected_first_round=first_round,
        detected_all_round=all_round,
        timeline=timeline,
    )


def _complaints(peer: TrustChain, against: bytes) -> list[HalfBlock]:
    return [block for block in peer.store.blocks(block_type=COMPLAINT) if block.transaction.get("against") == against]


def _distrusts(buyer: TrustChain, view: ReputationView, seller: bytes) -> bool:
    """A complaint by the buyer itself, or by a peer the buyer's NetFlow view rates above 0."""
    return any(
        complaint.public_key == buyer.public_key or view.netflow(complaint.public_key) > 0
        for complaint in _complaints(buyer, seller)
    )


# --- Free rider -------------------------------------------------------------------------------


def free_rider(seed: int = 1, *, sellers: int = 8, listings_per_seller: int = 3) -> ScenarioResult:
    """A peer reads every listing's CID and fetches the ciphertext, but never pays.

    The old EnerDatX leaked the data to anyone who copied a hash; now a listing points at
    ciphertext whose key only a paying buyer receives (sealed in the agreement). Gain: the
    plaintext bytes the free rider obtains. A paying buyer of the same listings is the control.
    """
    network = LedgerNetwork(seed)
    good = [network.add_peer() for _ in range(sellers)]
    rider, buyer = network.add_peer(), network.add_peer()
    content: dict[str, bytes] = {}  # CID -> ciphertext: a stand-in for the content store
    keys: dict[str, bytes] = {}  # CID -> data key, known to its seller only
    for seller in good:
        for _ in range(listings_per_seller):
            key = new_data_key()
            ciphertext = encrypt_data(key, network.rng.randbytes(256))
            cid = "sha256:" + hashlib.sha256(ciphertext).hexdigest()
            content[cid], keys[cid] = ciphertext, key
            seller.record(LISTING, {"cid": cid, "price": 10})
    network.gossip(good + [rider, buyer])
    for _ in range(3):
        network.gossip([rider, buyer])
    listings = [block for block in rider.store.blocks(block_type=LISTING)]
    stolen = paid_for = 0
    for listing in listings:
        ciphertext = content[listing.transaction["cid"]]
        try:  # the free rider has the CID and the ciphertext, and guesses keys
            stolen += len(decrypt_data(new_data_key(), ciphertext))
        except DataVerificationError:
            pass
        seller = next(peer for peer in good if peer.public_key == listing.public_key)
        sealed = seal_to(buyer.public_key, keys[listing.transaction["cid"]])
        _, agreement = network.trade(buyer, seller, {"amount": 10}, {"amount": 10, "sealed_key": sealed})
        paid_for += len(decrypt_data(buyer.identity.unseal(agreement.transaction["sealed_key"]), ciphertext))
    return ScenarioResult(
        "free_rider",
        seed,
        {"sellers": sellers, "listings_per_seller": listings_per_seller},
        attacker_gain=stolen,
        figures={"listings_seen": len(listings), "paying_buyer_bytes": paid_for},
    )
