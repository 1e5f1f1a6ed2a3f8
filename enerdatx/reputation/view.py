"""One peer's subjective, incremental reputation view over the blocks it holds."""

from __future__ import annotations

from typing import overload

import networkx as nx

from enerdatx.crypto import is_public_key
from enerdatx.errors import ReputationError
from enerdatx.reputation.graph import DAY_MS, ContributionRule, InteractionGraph
from enerdatx.reputation.netflow import ENGINES, Engine, netflow_scores
from enerdatx.reputation.pagerank import ALPHA, temporal_pagerank
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain

__all__ = ["ReputationView"]


def _check_key(name: str, key: object) -> None:
    if not is_public_key(key):
        raise ReputationError(f"{name} is a 32-byte public key, not {type(key).__name__} of length "
                              f"{len(key) if isinstance(key, bytes | str) else '?'}")


class ReputationView:
    """NetFlow and Temporal PageRank scores as one evaluator sees them, kept up to date.

    Given a TrustChain ledger, the view subscribes to it: every newly stored block that
    completes a countersigned pair adds to the interaction graph, and every fraud proof
    removes the forker from all scores. Given a bare BlockStore, it reads what the store
    holds and is fed further blocks through :meth:`add_block`. Scores are recomputed lazily:
    on the first question after a change, never per block.
    """

    def __init__(
        self,
        source: TrustChain | BlockStore,
        evaluator: bytes | None = None,
        *,
        rule: ContributionRule | None = None,
        half_life_ms: int = 30 * DAY_MS,
        alpha: float = ALPHA,
        engine: Engine = "auto",
    ) -> None:
        # Checked when made, not at the first question: alpha 2, engine "x" and a 1-byte evaluator
        # made a view that failed (or answered 0 for everyone) later; None was "a bare BlockStore".
        if not isinstance(source, TrustChain | BlockStore):
            raise ReputationError(f"a view reads a TrustChain ledger or a BlockStore, not {type(source).__name__}")
        if evaluator is not None:
            _check_key("evaluator", evaluator)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise ReputationError(f"alpha must be strictly between 0 and 1, not {alpha!r}")
        if engine not in ENGINES:
            raise ReputationError(f"unknown max-flow engine {engine!r}; use {', '.join(ENGINES)}")
        ledger = source if isinstance(source, TrustChain) else None
        self.store: BlockStore = source.store if isinstance(source, TrustChain) else source
        if evaluator is None:
            if ledger is None:
                raise ReputationError("a view over a bare BlockStore needs the evaluator's public key")
            evaluator = ledger.public_key
        self.evaluator = evaluator
        self.alpha = alpha
        self.engine: Engine = engine
        self.interactions = InteractionGraph(rule, half_life_ms=half_life_ms)
        self.forkers: set[bytes] = {proof.public_key for proof in self.store.fraud_proofs()}
        self._netflow: dict[bytes, int] | None = None
        self._pagerank: dict[bytes, float] | None = None
        self.interactions.add_blocks(self.store.blocks())
        if ledger is not None:
            ledger.subscribe(self.add_block)
            ledger.on_fraud(self.add_fraud_proof)

    @property
    def graph(self) -> nx.DiGraph:
        """The interaction graph (networkx DiGraph, edge u -> v: u contributed to v); read-only."""
        return self.interactions.graph

    def add_block(self, block: HalfBlock) -> bool:
        """Take in a block that the store now holds; True if it completed a pair that counts."""
        if block.is_record:
            return False
        if block.is_proposal:
            # Every held agreement, not just the first: add_pair skips one by a wrong signer.
            agreements = self.store.agreements_for(block.public_key, block.sequence_number)
            pairs = [(block, agreement) for agreement in agreements]
        else:
            proposal = self.store.get(block.link_public_key, block.link_sequence_number)
            pairs = [] if proposal is None else [(proposal, block)]
        if not any(self.interactions.add_pair(proposal, agreement) for proposal, agreement in pairs):
            return False
        self._changed()
        return True

    def add_fraud_proof(self, proof: FraudProof) -> None:
        """Exclude a proven forker from every score from now on."""
        if proof.public_key not in self.forkers:
            self.forkers.add(proof.public_key)
            self._changed()

    @overload
    def netflow(self, public_key: None = None) -> dict[bytes, int]: ...
    @overload
    def netflow(self, public_key: bytes) -> int: ...

    def netflow(self, public_key: bytes | None = None) -> dict[bytes, int] | int:
        """NetFlow scores of every known peer, or the score of one (0 for an unknown peer or a forker)."""
        if public_key is not None:
            _check_key("public_key", public_key)  # a hex string scored 0, silently
        scores = self._netflow
        if scores is None:
            scores = self._netflow = netflow_scores(self.graph, self.evaluator, exclude=self.forkers, engine=self.engine)
        if public_key is None:
            return dict(scores)
        return scores.get(public_key, 0)

    @overload
    def pagerank(self, public_key: None = None) -> dict[bytes, float]: ...
    @overload
    def pagerank(self, public_key: bytes) -> float: ...

    def pagerank(self, public_key: bytes | None = None) -> dict[bytes, float] | float:
        """Temporal PageRank of every known peer, or of one (0.0 for an unknown peer or a forker)."""
        if public_key is not None:
            _check_key("public_key", public_key)
        scores = self._pagerank
        if scores is None:
            scores = self._pagerank = temporal_pagerank(
                self.interactions, self.evaluator, alpha=self.alpha, exclude=self.forkers
            )
        if public_key is None:
            return dict(scores)
        return scores.get(public_key, 0.0)

    def _changed(self) -> None:
        self._netflow = None
        self._pagerank = None
