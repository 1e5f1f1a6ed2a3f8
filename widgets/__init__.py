"""Jupyter panels over EnerDatX's public API (imported as ``enerdatx.widgets``).

Each panel is a small ipywidgets container that shows errors as messages and long work as a
progress bar; :class:`Workbench` puts them together over one Lab of local peers.

Names load on first use (PEP 562), so ``from enerdatx.widgets import ChainExplorer`` needs only
the ledger, not the network, market and meter layers the other panels sit on.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "attack": ["ForkPanel", "fraud_awareness_frame"],
    "chain": ["ChainExplorer", "chain_frame", "fraud_frame", "trade_graph"],
    "market": ["MarketPanel", "negotiations_frame", "order_book_frame"],
    "meter": ["MeterPanel"],
    "panel": ["Panel", "short_key", "show_figure", "whole_tokens"],
    "peers": ["PeersPanel", "peers_frame"],
    "privacy": ["PrivacyPanel", "report_html"],
    "purchases": ["PurchasesPanel", "dataset_figure", "purchases_frame"],
    "subscriptions": [
        "SubscriptionsPanel", "consent_frame", "received_figure", "subscription_service_of", "subscriptions_of",
    ],
    "union": ["LabUnionPanel", "UnionPanel", "union_figure", "union_service_of"],
    "workbench": ["Workbench"],
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
