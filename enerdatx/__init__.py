"""EnerDatX: a decentralized market for household energy data.

TrustChain on IPv8 records every trade, IPFS carries the encrypted data sets,
and DSMR P1 meters, OEHU readings and CSV files supply them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.meter import cut_dataset, synthetic_household

__version__ = "0.1.0"

__all__ = ["Lab", "__version__", "cut_dataset", "synthetic_household"]

# The names a first script needs, imported on first use: ``import enerdatx.errors`` (the CLI,
# a REST client) must not pay for IPv8, pandas and the market.
_LAZY = {"Lab": "enerdatx.lab", "cut_dataset": "enerdatx.meter", "synthetic_household": "enerdatx.meter"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'enerdatx' has no attribute {name!r}")
