"""The market panel: list a data set for sale, see the order book, buy, bid, follow negotiations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
import traitlets

from enerdatx.errors import MarketError
from enerdatx.market import Query

from .panel import Panel
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.market.formats import Listing
    from enerdatx.market.market import Trade
    from enerdatx.market.negotiation import StandingRequest
    from enerdatx.market.service import MarketService
    from enerdatx.meter.dataset import DataSet
    from enerdatx.peer import Peer

__all__ = ["MarketPanel", "negotiations_frame", "order_book_frame"]

BOOK_COLUMNS = ["listing", "seller", "price", "kind", "start", "end", "n_readings", "location", "household_type", "status"]
LISTING_SPREAD_SECONDS = 10.0


def order_book_frame(service: MarketService, names: dict[str, str]) -> pd.DataFrame:
    """A peer's order book with short listing ids and seller names."""
    book = service.market.book.dataframe()
    book = book.assign(
        listing=book["listing_id"].str[:12],
        seller=book["seller"].map(lambda key: names.get(key, key[:8])),
        start=pd.to_datetime(book["start"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        end=pd.to_datetime(book["end"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
    )
    return book[BOOK_COLUMNS]


def negotiations_frame(service: MarketService, names: dict[str, str]) -> pd.DataFrame:
    """A peer's negotiations: with whom, about which listing, where they stand."""
    rows = [
        {
            "negotiation": negotiation.negotiation[:8],
            "listing": negotiation.listing.hex()[:12],
            "role": "buyer" if negotiation.buyer == service.public_key else "seller",
            "counterparty": names.get(
                (negotiation.seller if negotiation.buyer == service.public_key else negotiation.buyer).hex(), "?"
            ),
            "state": negotiation.state,
            "offer": negotiation.offer,
            "rounds": negotiation.rounds,
            "reason": negotiation.reason or "",
        }
        for negotiation in service.negotiations.values()
    ]
    return pd.DataFrame(rows, columns=["negotiation", "listing", "role", "counterparty", "state", "offer", "rounds", "reason"])


class MarketPanel(Panel):
    """Sell as one peer, buy or bid as another; the order book and negotiations as the buyer sees them."""

    last_trade = traitlets.Any(None, help="the last (buyer name, Trade) bought through this panel")

    def __init__(self, lab: Lab, dataset_for: Callable[[Peer], DataSet]) -> None:
        self.lab = lab
        self.dataset_for = dataset_for
        self.seller = widgets.Dropdown(description="Seller")
        self.price = widgets.BoundedIntText(value=40, min=0, max=10**9, description="Price", layout={"width": "180px"})
        self.sell_button = widgets.Button(description="Sell", icon="upload", button_style="primary")
        self.sell_button.add_class("edx-sell")
        self.buyer = widgets.Dropdown(description="Buyer")
        self.listing = widgets.Dropdown(description="Listing", layout={"width": "420px"})
        self.buy_button = widgets.Button(description="Buy", icon="shopping-cart", button_style="success")
        self.buy_button.add_class("edx-buy")
        self.offer = widgets.BoundedIntText(value=25, min=1, max=10**9, description="Offer", layout={"width": "180px"})
        self.max_price = widgets.BoundedIntText(value=35, min=1, max=10**9, description="Up to", layout={"width": "180px"})
        self.bid_button = widgets.Button(description="Negotiate and buy", icon="comments", layout={"width": "auto"})
        self.request_button = widgets.Button(
            description="Post request up to that price", icon="bullhorn", layout={"width": "auto"}
        )
        self.book = widgets.HTML()
        self.negotiations = widgets.HTML()
        super().__init__(
            "Market",
            [
                widgets.HBox([self.seller, self.price, self.sell_button]),
                widgets.HBox([self.buyer, self.listing, self.buy_button]),
                widgets.HBox([self.offer, self.max_price, self.bid_button, self.request_button]),
                widgets.HTML("<b>Order book</b> (as the buyer sees it)"),
                self.book,
                widgets.HTML("<b>Negotiations</b> (the buyer's)"),
                self.negotiations,
            ],
        )
        self.when_picked(self.buyer, self.refresh)
        self.sell_button.on_click(lambda _: self.sell())
        self.buy_button.on_click(lambda _: self.buy())
        self.bid_button.on_click(lambda _: self.bid())
        self.request_button.on_click(lambda _: self.attempt(self.post_request))
        self.refresh()

    # --- who is who -------------------------------------------------------------------

    def _peers(self) -> dict[str, Peer]:
        return {peer_name(peer): peer for peer in self.lab.peers if peer.has_market}

    def _service(self, name: str | None) -> MarketService:
        peer = self._peers().get(name) if name is not None else None
        if peer is None:
            raise MarketError("start some peers first")
        return peer.market

    def _names(self) -> dict[str, str]:
        return {peer.public_key.hex(): name for name, peer in self._peers().items()}

    def refresh(self) -> None:
        """Read the peers, the buyer's order book and negotiations again."""
        names = list(self._peers())
        self.pick(self.seller, names)
        self.pick(self.buyer, names[1:] + names[:1])
        if self.buyer.value is None:
            self.pick(self.listing, [])
            self.book.value = "<i>no peers running</i>"
            self.negotiations.value = ""
            return
        service = self._service(self.buyer.value)
        key_names = self._names()
        self.pick(
            self.listing,
            [
                (f"{listing.price} · {listing.descriptor.get('kind')} · {listing.descriptor.get('location')}"
                 f" · {key_names.get(listing.seller.hex(), '?')} · {listing.listing_id[:8]}", listing.listing_id)
                for listing in service.search()
            ],
        )  # fmt: skip
        self.book.value = frame_html(order_book_frame(service, key_names), "edx-book", empty="no listings", index=False)
        self.negotiations.value = frame_html(
            negotiations_frame(service, key_names), "edx-negotiations", empty="no negotiations", index=False
        )

    # --- actions ----------------------------------------------------------------------

    def sell(self) -> asyncio.Task[Listing | None]:
        """List a data set for the seller at the price; wait until the buyer's book has it; a task."""

        async def sell() -> Listing:
            seller = self._service(self.seller.value)
            buyer_name = self.buyer.value
            with self.working("Listing", 2) as advance:
                listing = seller.sell(self.dataset_for(seller.peer), self.price.value)
                advance()
                if buyer_name is not None and buyer_name != self.seller.value:
                    # The service's wait asks the peers again for a listing lost on the way.
                    await self._service(buyer_name).wait_for_listing(listing.listing_id, timeout=LISTING_SPREAD_SECONDS)
                advance()
            self.refresh()
            if listing.listing_id not in [value for _, value in self.listing.options]:
                # Stop all ran meanwhile: choosing it failed with "TraitError: Invalid selection".
                raise MarketError(f"listed {listing.listing_id[:12]}, but no buyer's book shows it: were the peers stopped?")
            self.listing.value = listing.listing_id
            self.show_info(f"{self.seller.value} listed {listing.listing_id[:12]} for {listing.price}")
            self.changed()
            return listing

        return self.attempt_async(sell)

    def buy(self) -> asyncio.Task[Trade | None]:
        """The buyer pays for the chosen listing and gets the verified data; a task."""
        return self._trade(lambda service, listing_id: service.buy(listing_id), "Buying")

    def bid(self) -> asyncio.Task[Trade | None]:
        """The buyer offers a price, haggles up to the maximum, then buys at the agreed price; a task."""
        return self._trade(
            lambda service, listing_id: service.negotiate_and_buy(listing_id, self.offer.value, self.max_price.value),
            "Negotiating",
        )

    def _trade(self, action: Callable[[MarketService, str], Awaitable[Trade]],
               description: str) -> asyncio.Task[Trade | None]:
        async def trade() -> Trade:
            buyer_name = self.buyer.value
            service = self._service(buyer_name)
            if self.listing.value is None:
                raise MarketError("no listing to buy: sell one first")
            try:
                with self.working(description, 1):
                    trade = await action(service, self.listing.value)
            finally:
                self.refresh()  # a declined negotiation or a failed payment is news too
            self.last_trade = (buyer_name, trade)
            self.show_info(f"{buyer_name} bought {trade.listing.listing_id[:12]} for {trade.amount}; data verified")
            self.changed()
            return trade

        return self.attempt_async(trade)

    def post_request(self) -> StandingRequest:
        """The buyer posts a standing request for electricity data up to the maximum price."""
        service = self._service(self.buyer.value)
        request = service.post_request(Query(kind="electricity", max_price=self.max_price.value))
        self.show_info(f"{self.buyer.value} asks for electricity data up to {self.max_price.value}; "
                       f"{len(service.matches(own_only=True))} listings match")  # fmt: skip
        return request
