"""The data market: listings, order book, bids and negotiation, atomic settlement, wallets.

A listing is a block on the seller's chain; a trade is one TrustChain transaction whose
proposal pays and whose agreement carries the data key sealed to the buyer. Formats and
the settlement protocol: docs/market.md.
"""

from __future__ import annotations

from enerdatx.market.formats import COMPLAINT, LISTING, PAYMENT, WITHDRAWAL, Listing, commitment
from enerdatx.market.keyring import Keyring, Purchase
from enerdatx.market.market import Market, Trade
from enerdatx.market.orderbook import OrderBook, Query
from enerdatx.market.wallet import DEFAULT_GRANT, Balance, Wallet

__all__ = [
    "COMPLAINT",
    "DEFAULT_GRANT",
    "LISTING",
    "PAYMENT",
    "WITHDRAWAL",
    "Balance",
    "Keyring",
    "Listing",
    "Market",
    "OrderBook",
    "Purchase",
    "Query",
    "Trade",
    "Wallet",
    "commitment",
]
