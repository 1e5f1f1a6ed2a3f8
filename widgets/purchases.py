"""The purchases panel: a buyer's verified data sets, decrypted again from its content store and plotted."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from enerdatx.errors import MarketError
from enerdatx.meter import load_dataset_bytes

from .panel import Panel, show_figure
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.market.service import MarketService
    from enerdatx.peer import Peer

__all__ = ["PurchasesPanel", "dataset_figure", "purchases_frame"]


def purchases_frame(service: MarketService, names: dict[str, str]) -> pd.DataFrame:
    """What a peer bought: listing, seller, amount, when."""
    rows = [
        {
            "listing": purchase.listing_id[:12],
            "seller": names.get(purchase.seller.hex(), purchase.seller.hex()[:8]),
            "amount": purchase.amount,
            "cid": purchase.cid,
            "bought_at": pd.Timestamp(purchase.bought_at, unit="ms", tz="UTC"),
        }
        for purchase in service.purchases()
    ]
    return pd.DataFrame(rows, columns=["listing", "seller", "amount", "cid", "bought_at"])


def dataset_figure(frame: pd.DataFrame, title: str) -> go.Figure:
    """Energy per interval of a decrypted data set: one line per total register (tariff splits left out)."""
    figure = go.Figure()
    for column in frame.columns:
        values = frame[column]
        is_total = not re.search(r"_t\d_", column)
        if is_total and pd.api.types.is_numeric_dtype(values) and values.fillna(0).any():
            figure.add_trace(go.Scatter(x=frame.index, y=values, name=column, mode="lines"))
    figure.update_layout(title=title, xaxis_title="interval start (UTC)", yaxis_title="Wh (gas: dm³) per interval",
                         hovermode="x unified", height=380, showlegend=True)  # fmt: skip
    return figure


class PurchasesPanel(Panel):
    """Pick a buyer and one of its purchases; decrypt it and plot it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.buyer = widgets.Dropdown(description="Buyer")
        self.purchase = widgets.Dropdown(description="Data set", layout={"width": "360px"})
        self.decrypt_button = widgets.Button(description="Decrypt and plot", icon="unlock")
        self.table = widgets.HTML()
        self.plot = widgets.Output()
        self.plot.add_class("edx-purchase-plot")
        self.frame: pd.DataFrame | None = None
        self.figure: go.Figure | None = None
        super().__init__(
            "Purchases", [widgets.HBox([self.buyer, self.purchase, self.decrypt_button]), self.table, self.plot]
        )
        self.when_picked(self.buyer, self.refresh)
        self.decrypt_button.on_click(lambda _: self.attempt(self.decrypt))
        self.refresh()

    def _peers(self) -> dict[str, Peer]:
        return {peer_name(peer): peer for peer in self.lab.peers if peer.has_market}

    def refresh(self) -> None:
        """Read the buyers and their purchases again."""
        peers = self._peers()
        self.pick(self.buyer, list(peers))
        peer = peers.get(self.buyer.value)
        if peer is None:
            self.pick(self.purchase, [])
            self.table.value = "<i>no peers running</i>"
            return
        service = peer.market
        names = {other.public_key.hex(): name for name, other in peers.items()}
        self.pick(self.purchase, [
            (f"{purchase.listing_id[:12]} from {names.get(purchase.seller.hex(), '?')}", purchase.listing_id)
            for purchase in service.purchases()
        ])  # fmt: skip
        self.table.value = frame_html(purchases_frame(service, names), "edx-purchases", empty="nothing bought yet", index=False)

    def show(self, buyer: str, listing_id: str) -> pd.DataFrame | None:
        """Select ``buyer``'s purchase of ``listing_id`` and plot it."""
        self.refresh()
        self.buyer.value = buyer
        self.refresh()
        self.purchase.value = listing_id
        return self.attempt(self.decrypt)

    def decrypt(self) -> pd.DataFrame:
        """Decrypt the chosen purchase from the content store (checked against its CID) and plot it."""
        peer = self._peers().get(self.buyer.value)
        if peer is None or self.purchase.value is None:
            raise MarketError("nothing bought yet: buy a data set in the market panel")
        plaintext = peer.market.market.purchased_data(self.purchase.value)
        self.frame = load_dataset_bytes(plaintext)
        self.figure = dataset_figure(self.frame, f"Data set {self.purchase.value[:12]}, decrypted by {self.buyer.value}")
        show_figure(self.plot, self.figure)
        self.show_info(f"{len(self.frame)} intervals decrypted and verified")
        return self.frame
