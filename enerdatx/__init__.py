"""EnerDatX: a decentralized market for household energy data.

TrustChain on IPv8 records every trade, IPFS carries the encrypted data sets,
and DSMR P1 meters, OEHU readings and CSV files supply them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
