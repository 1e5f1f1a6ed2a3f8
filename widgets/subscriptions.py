"""The subscriptions panel: offer a live feed, subscribe, watch what each subscriber received, revoke.

The plot grows as periods settle (call :meth:`SubscriptionsPanel.refresh`, or let an action
do it); the consent table is the seller's view of who holds which periods under which terms.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from enerdatx.errors import MarketError

from .panel import Panel, show_figure
from .tables import frame_html, peer_name

__all__ = ["SubscriptionsPanel", "consent_frame", "received_figure", "subscriptions_of"]


def subscriptions_of(peer: Any) -> Any:
    """The Subscriptions of a lab peer (its SubscriptionService), or None."""
    from enerdatx.market.subscription import SubscriptionService

    service = next((s for s in peer.services if isinstance(s, SubscriptionService)), None)
    return None if service is None else service.subscriptions


def consent_frame(subscriptions: Any, names: dict[str, str]) -> pd.DataFrame:
    """The seller's consent view with peer names and compact periods."""
    frame = subscriptions.consent()
    if frame.empty:
        return frame
    frame = frame.assign(
        buyer=[names.get(key, key[:8]) for key in frame["buyer"]],
        offer=[offer[:8] for offer in frame["offer"]],
        periods_held=[_ranges(periods) for periods in frame["periods_held"]],
    )
    return frame.drop(columns=["subscription"])


def _ranges(periods: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out: list[str] = []
    for period in periods:
        if out and out[-1].split("-")[-1] == str(period - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{period}"
        else:
            out.append(str(period))
    return ", ".join(out) or "none"


def received_figure(received: dict[str, pd.DataFrame], title: str = "What each subscriber received") -> go.Figure:
    """Import per interval of every subscriber's decrypted periods: one trace per subscriber."""
    figure = go.Figure()
    for offset, (name, frame) in enumerate(received.items()):
        if frame.empty:
            continue
        # A small vertical offset per subscriber keeps identical data visibly separate lines.
        figure.add_trace(go.Scatter(x=frame.index, y=frame["import_wh"] + 5 * offset, name=name, mode="lines+markers"))
    figure.update_layout(title=title, xaxis_title="interval start (UTC)",
                         yaxis_title="import Wh per interval (+5 Wh per subscriber)",
                         hovermode="x unified", height=360, showlegend=True)  # fmt: skip
    return figure


class SubscriptionsPanel(Panel):
    """Offer a subscription from a peer with a meter, subscribe other peers, revoke, and watch."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.seller = widgets.Dropdown(description="Seller")
        self.price = widgets.BoundedIntText(value=5, min=1, max=10**9, description="Price/period")
        self.period_minutes = widgets.BoundedIntText(value=60, min=1, max=525_600, description="Period (min)")
        self.purpose = widgets.Text(value="grid-research", description="Purpose")
        self.retention = widgets.BoundedIntText(value=30, min=1, max=36_600, description="Retention (d)")
        self.resale = widgets.Checkbox(value=False, description="Resale allowed")
        self.offer_button = widgets.Button(description="Offer", icon="rss")
        self.subscriber = widgets.Dropdown(description="Subscriber")
        self.offer = widgets.Dropdown(description="Offer", layout={"width": "320px"})
        self.subscribe_button = widgets.Button(description="Subscribe", icon="check")
        self.subscription = widgets.Dropdown(description="Subscription", layout={"width": "320px"})
        self.revoke_button = widgets.Button(description="Revoke", icon="ban")
        self.table = widgets.HTML()
        self.plot = widgets.Output()
        self.figure: go.Figure | None = None
        super().__init__("Subscriptions", [
            widgets.HBox([self.seller, self.price, self.period_minutes]),
            widgets.HBox([self.purpose, self.retention, self.resale, self.offer_button]),
            widgets.HBox([self.subscriber, self.offer, self.subscribe_button]),
            widgets.HBox([self.subscription, self.revoke_button]),
            self.table, self.plot,
        ])  # fmt: skip
        self.when_picked(self.seller, self.refresh)
        self.when_picked(self.subscriber, self.refresh)
        self.offer_button.on_click(lambda _: self.attempt(self.make_offer))
        self.subscribe_button.on_click(lambda _: self.attempt_async(self.subscribe))
        self.revoke_button.on_click(lambda _: self.attempt(self.revoke))
        self.refresh()

    def _peers(self) -> dict[str, Any]:
        return {peer_name(p): p for p in self.lab.peers if subscriptions_of(p) is not None}

    def _names(self) -> dict[str, str]:
        return {peer.public_key.hex(): name for name, peer in self._peers().items()}

    def refresh(self) -> None:
        """Read offers, subscriptions, the consent view and what each subscriber received again."""
        peers = self._peers()
        sellers = [name for name, p in peers.items() if subscriptions_of(p).readings is not None]
        self.pick(self.seller, sellers)
        self.pick(self.subscriber, [name for name in peers if name != self.seller.value])
        seller = peers.get(self.seller.value)
        subscriber = peers.get(self.subscriber.value)
        offers = subscriptions_of(subscriber).live_offers() if subscriber is not None else []
        self.pick(self.offer, [(f"{o.offer_id[:8]}: {o.price}/period of {o.period_ms // 60000} min", o.offer_id)
                               for o in offers])
        held = subscriptions_of(subscriber).held if subscriber is not None else {}
        self.pick(self.subscription, [(f"{sid[:8]} ({subscriptions_of(subscriber).subscription_status(sid)})", sid)
                                      for sid in held])
        if seller is None:
            self.table.value = "<i>no peer with a meter: add SubscriptionService(meter=...) to one</i>"
            return
        self.table.value = frame_html(consent_frame(subscriptions_of(seller), self._names()), "edx-consent",
                                      empty="no subscribers yet", index=False)
        self.figure = received_figure(self.received())
        show_figure(self.plot, self.figure)

    def received(self) -> dict[str, pd.DataFrame]:
        """Every subscriber's decrypted periods of the chosen seller's offers, by peer name."""
        seller = self._peers().get(self.seller.value)
        out: dict[str, pd.DataFrame] = {}
        for name, peer in self._peers().items():
            subs = subscriptions_of(peer)
            frames = [subs.received(sid) for sid, held in subs.held.items()
                      if seller is not None and held.agreement.seller == seller.public_key]
            frames = [f for f in frames if not f.empty]
            if frames:
                out[name] = pd.concat(frames).sort_index()
        return out

    def make_offer(self) -> Any:
        """Sign an offer from the chosen seller, its periods starting at its first stored reading."""
        from enerdatx.market.subscription_formats import Terms

        seller = self._peers().get(self.seller.value)
        if seller is None:
            raise MarketError("no peer with a meter to sell from")
        subs = subscriptions_of(seller)
        first = subs.readings.readings(last=None).index.min() if len(subs.readings) else pd.Timestamp.now("UTC")
        start = first.floor(f"{self.period_minutes.value}min")
        offer = subs.offer({"kind": "electricity", "resolution_seconds": 900, "location": "unknown",
                            "household_type": "unknown"}, self.price.value,
                           period_ms=self.period_minutes.value * 60_000, start=start.value // 1_000_000,
                           periods=10_000, terms=Terms(self.purpose.value, self.retention.value, self.resale.value))
        self.show_info(f"offer {offer.offer_id[:8]} signed")
        self.changed()
        self.refresh()
        return offer

    async def subscribe(self) -> Any:
        """Subscribe the chosen peer to the chosen offer."""
        subscriber = self._peers().get(self.subscriber.value)
        if subscriber is None or self.offer.value is None:
            raise MarketError("pick a subscriber and an offer it knows")
        agreement = await subscriptions_of(subscriber).subscribe(self.offer.value)
        self.show_info(f"{self.subscriber.value} subscribed: {agreement.subscription_id[:8]}")
        self.changed()
        self.refresh()
        return agreement

    def revoke(self) -> Any:
        """Revoke the chosen subscription from the subscriber's side."""
        subscriber = self._peers().get(self.subscriber.value)
        if subscriber is None or self.subscription.value is None:
            raise MarketError("pick a subscriber and one of its subscriptions")
        block = subscriptions_of(subscriber).revoke(self.subscription.value)
        self.show_info(f"{self.subscriber.value} revoked {self.subscription.value[:8]}")
        self.changed()
        self.refresh()
        return block
