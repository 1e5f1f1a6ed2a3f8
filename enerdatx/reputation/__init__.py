"""Subjective reputation over TrustChain: NetFlow and personalised Temporal PageRank.

A peer builds an interaction graph from the countersigned pairs it holds
(:class:`InteractionGraph`; what counts as a contribution is a :class:`ContributionRule`),
and scores every other peer from its own position in it (:class:`ReputationView`). The
definitions and parameters are in docs/reputation.md.
"""

from enerdatx.reputation.graph import ContributionRule, Direction, InteractionGraph, WeightFunction, amount_weight
from enerdatx.reputation.netflow import netflow_capacities, netflow_scores
from enerdatx.reputation.pagerank import temporal_pagerank
from enerdatx.reputation.view import ReputationView

__all__ = [
    "ContributionRule",
    "Direction",
    "InteractionGraph",
    "ReputationView",
    "WeightFunction",
    "amount_weight",
    "netflow_capacities",
    "netflow_scores",
    "temporal_pagerank",
]
