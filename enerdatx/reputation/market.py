"""Hooks the market calls to use reputation: refuse counterparties below a threshold, sort by score.

They take a :class:`ReputationView` and plain keys, and wrap the market's own countersign
policies, so the market keeps its code and decides where to call them. Which view to use
is the caller's choice: with the default rule a peer's score is the data it sold (what a
buyer wants to know of a seller); a seller rating buyers by what they paid keeps a view with
``ContributionRule(direction=Direction.FROM_PROPOSER)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

from enerdatx.errors import ReputationError, TransactionRejectedError
from enerdatx.reputation.view import ReputationView
from enerdatx.trustchain import HalfBlock, TrustChain
from enerdatx.trustchain.ledger import Policy

__all__ = ["Measure", "acceptable", "rank_by_reputation", "refuse_below", "score"]

Measure = Literal["netflow", "pagerank"]
Item = TypeVar("Item")


def score(view: ReputationView, public_key: bytes, measure: Measure = "netflow") -> float:
    """One peer's score in ``view`` by ``measure``."""
    _check(measure)
    return view.netflow(public_key) if measure == "netflow" else view.pagerank(public_key)


def acceptable(view: ReputationView, public_key: bytes, threshold: float, measure: Measure = "netflow") -> bool:
    """True when the peer is no proven forker and scores at least ``threshold``."""
    _check_threshold(threshold)
    return public_key not in view.forkers and score(view, public_key, measure) >= threshold


def rank_by_reputation(
    view: ReputationView,
    items: Iterable[Item],
    key: Callable[[Item], bytes],
    measure: Measure = "netflow",
) -> list[Item]:
    """``items`` (orders, listings) best counterparty first; ``key`` gives an item's public key.

    Equal scores keep their order (the sort is stable), so a price-sorted book stays
    price-sorted among equally reputed peers; proven forkers go last.
    """
    _check(measure)
    scores = view.netflow() if measure == "netflow" else view.pagerank()

    def order(item: Item) -> tuple[bool, float]:
        public_key = key(item)
        return public_key in view.forkers, -scores.get(public_key, 0)

    return sorted(items, key=order)


def _check_threshold(threshold: object) -> None:
    # "5" failed with a TypeError at the first proposal; NaN refused every proposer (score >= NaN is false).
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ReputationError(f"a reputation threshold is a finite number, not {threshold!r}")


def _check(measure: str) -> None:
    if measure not in ("netflow", "pagerank"):
        raise ReputationError(f"unknown reputation measure {measure!r}; use netflow or pagerank")


def refuse_below(view: ReputationView, threshold: float, policy: Policy, measure: Measure = "netflow") -> Policy:
    """Wrap a countersign policy: refuse proposers below ``threshold`` (and forkers), else ask ``policy``."""
    _check_threshold(threshold)
    _check(measure)

    def guarded(ledger: TrustChain, proposal: HalfBlock) -> dict | None:
        if not acceptable(view, proposal.public_key, threshold, measure):
            raise TransactionRejectedError(
                f"reputation of {proposal.public_key.hex()[:16]} is below {threshold} ({measure})"
            )
        return policy(ledger, proposal)

    return guarded
