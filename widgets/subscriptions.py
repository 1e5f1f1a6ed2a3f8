"""The subscriptions panel: offer a live feed, subscribe, watch what each subscriber received, revoke.

The plot grows as periods settle (call :meth:`SubscriptionsPanel.refresh`, or let an action
do it); the consent table is the seller's view of who holds which periods under which terms.
With ``simulator=True`` (as in the workbench) the panel also runs a meter: a simulated P1 port
on 127.0.0.1 that one peer reads, sending a period's telegrams at the press of a button.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from enerdatx.errors import MarketError, MeterDataError

from .panel import Panel, show_figure, whole_tokens
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.market.subscription import Held, Subscriptions, SubscriptionService
    from enerdatx.market.subscription_formats import Agreement, Offer
    from enerdatx.meter.simulator import MeterSimulator
    from enerdatx.peer import Peer
    from enerdatx.trustchain import HalfBlock

__all__ = ["SubscriptionsPanel", "consent_frame", "received_figure", "subscription_service_of", "subscriptions_of"]


def subscription_service_of(peer: Peer) -> SubscriptionService | None:
    """A lab peer's SubscriptionService, or None."""
    from enerdatx.market.subscription import SubscriptionService

    return next((s for s in peer.services if isinstance(s, SubscriptionService)), None)


def subscriptions_of(peer: Peer) -> Subscriptions | None:
    """The Subscriptions of a lab peer (its SubscriptionService), or None."""
    service = subscription_service_of(peer)
    return None if service is None else service.subscriptions


def consent_frame(subscriptions: Subscriptions, names: dict[str, str]) -> pd.DataFrame:
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
    """Offer a subscription from a peer with a meter, subscribe other peers, revoke, and watch.

    With ``simulator=True`` the panel starts the meter itself (see the module's docstring).
    """

    def __init__(self, lab: Lab, *, simulator: bool = False) -> None:
        self.lab = lab
        self.seller = widgets.Dropdown(description="Seller")
        self.price = widgets.Text(value="5", description="Price/period", layout={"width": "200px"})
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
        self.plot.add_class("edx-subscriptions-plot")
        self.figure: go.Figure | None = None
        self._drawn: tuple[object, ...] = ()  # what the figure shows: the seller, (subscriber, intervals)...
        self._frames: dict[str, tuple[tuple[int, ...], pd.DataFrame]] = {}  # subscription -> (periods, frame)
        self.meter_peer = widgets.Dropdown(description="Meter on")
        self.household = widgets.IntText(value=21, description="Household", layout={"width": "180px"})
        self.meter_button = widgets.Button(description="Start meter", icon="plug")
        self.period_button = widgets.Button(description="Send a period", icon="forward")
        self.meter: MeterSimulator | None = None
        self.meter_readings: pd.DataFrame | None = None  # what the meter sends, one telegram a row
        self._metered: Peer | None = None  # the peer that reads the meter
        simulator_rows = [widgets.HBox([self.meter_peer, self.household, self.meter_button, self.period_button])]
        self.simulator = simulator
        for control, css_class in ((self.offer_button, "edx-offer"), (self.offer, "edx-offer-choice"),
                                   (self.subscribe_button, "edx-subscribe"), (self.revoke_button, "edx-revoke"),
                                   (self.meter_button, "edx-start-meter"), (self.period_button, "edx-send-period")):
            control.add_class(css_class)  # for the browser test, and for anyone styling the panel
        super().__init__("Subscriptions", [
            *(simulator_rows if simulator else []),  # first: there is nothing to offer before a meter runs
            widgets.HBox([self.seller, self.price, self.period_minutes]),
            widgets.HBox([self.purpose, self.retention, self.resale, self.offer_button]),
            widgets.HBox([self.subscriber, self.offer, self.subscribe_button]),
            widgets.HBox([self.subscription, self.revoke_button]),
            self.table, self.plot,
        ])  # fmt: skip
        self.add_class("edx-subscriptions")
        self.when_picked(self.seller, self.refresh)
        self.when_picked(self.subscriber, self.refresh)
        self.offer_button.on_click(lambda _: self.attempt(self.make_offer))
        self.subscribe_button.on_click(lambda _: self.attempt_async(self.subscribe))
        self.revoke_button.on_click(lambda _: self.attempt(self.revoke))
        self.meter_button.on_click(lambda _: self.start_meter())
        self.period_button.on_click(lambda _: self.send_period())
        self.refresh()

    def _subscriptions(self) -> dict[str, Subscriptions]:
        """The Subscriptions of every peer that has them, by peer name."""
        found = {peer_name(peer): subscriptions_of(peer) for peer in self.lab.peers}
        return {name: subs for name, subs in found.items() if subs is not None}

    def _names(self) -> dict[str, str]:
        return {subs.public_key.hex(): name for name, subs in self._subscriptions().items()}

    def _market_peers(self) -> dict[str, Peer]:
        return {peer_name(p): p for p in self.lab.peers if p.has_market}

    def refresh(self) -> None:
        """Read offers, subscriptions, the consent view and what each subscriber received again."""
        if self.simulator:
            self._refresh_meter()
        everyone = self._subscriptions()
        self.pick(self.seller, [name for name, subs in everyone.items() if subs.readings is not None])
        self.pick(self.subscriber, [name for name in everyone if name != self.seller.value])
        seller = everyone.get(self.seller.value) if self.seller.value is not None else None
        subscriber = everyone.get(self.subscriber.value) if self.subscriber.value is not None else None
        offers = subscriber.live_offers() if subscriber is not None else []
        self.pick(self.offer, [(f"{o.offer_id[:8]}: {o.price}/period of {o.period_ms // 60000} min", o.offer_id)
                               for o in offers])
        self.pick(self.subscription, [] if subscriber is None else [
            (f"{sid[:8]} ({subscriber.subscription_status(sid)})", sid) for sid in subscriber.held])
        if seller is None:
            hint = "start a meter below" if self.simulator else "add SubscriptionService(meter=...) to one"
            self.table.value = f"<i>no peer with a meter: {hint}</i>"
            return
        self.table.value = frame_html(consent_frame(seller, self._names()), "edx-consent",
                                      empty="no subscribers yet", index=False)
        received = self.received()
        drawn = (self.seller.value, *((name, len(frame)) for name, frame in received.items()))
        if self.figure is None or drawn != self._drawn:  # the workbench refreshes on every burst of blocks
            self.figure, self._drawn = received_figure(received), drawn
            show_figure(self.plot, self.figure)

    def received(self) -> dict[str, pd.DataFrame]:
        """Every subscriber's decrypted periods of the chosen seller's offers, by peer name."""
        everyone = self._subscriptions()
        seller = everyone.get(self.seller.value) if self.seller.value is not None else None
        out: dict[str, pd.DataFrame] = {}
        for name, subs in everyone.items():
            frames = [self._received(subs, sid) for sid, held in subs.held.items()
                      if seller is not None and held.agreement.seller == seller.public_key]
            frames = [f for f in frames if not f.empty]
            if frames:
                out[name] = pd.concat(frames).sort_index()
        return out

    def _received(self, subs: Subscriptions, subscription_id: str) -> pd.DataFrame:
        """``subs.received``, read again only when a period was added: each read opens every period's data."""
        trades = subs.held[subscription_id].trades
        settled = tuple(sorted(period for period, trade in trades.items() if trade is not None))
        cached = self._frames.get(subscription_id)
        if cached is None or cached[0] != settled:
            cached = self._frames[subscription_id] = (settled, subs.received(subscription_id))
        return cached[1]

    def make_offer(self) -> Offer:
        """Sign an offer from the chosen seller, its periods starting at its first stored reading."""
        from enerdatx.market.subscription_formats import Terms

        subs = self._subscriptions().get(self.seller.value) if self.seller.value is not None else None
        if subs is None or subs.readings is None:
            raise MarketError("no peer with a meter to sell from")
        first = subs.readings.readings(last=None).index.min() if len(subs.readings) else pd.Timestamp.now("UTC")
        start = first.floor(f"{self.period_minutes.value}min")
        price = whole_tokens(self.price.value, "the price per period")
        offer = subs.offer({"kind": "electricity", "resolution_seconds": 900, "location": "unknown",
                            "household_type": "unknown"}, price,
                           period_ms=self.period_minutes.value * 60_000, start=start.value // 1_000_000,
                           periods=10_000, terms=Terms(self.purpose.value, self.retention.value, self.resale.value))
        self.show_info(f"offer {offer.offer_id[:8]} signed")
        self.changed()
        self.refresh()
        return offer

    def _subscriber(self, missing: str) -> Subscriptions:
        subs = self._subscriptions().get(self.subscriber.value) if self.subscriber.value is not None else None
        if subs is None:
            raise MarketError(missing)
        return subs

    async def subscribe(self) -> Agreement:
        """Subscribe the chosen peer to the chosen offer."""
        subs = self._subscriber("pick a subscriber and an offer it knows")
        if self.offer.value is None:
            raise MarketError("pick a subscriber and an offer it knows")
        agreement = await subs.subscribe(self.offer.value)
        self.show_info(f"{self.subscriber.value} subscribed: {agreement.subscription_id[:8]}")
        self.changed()
        self.refresh()
        return agreement

    def revoke(self) -> HalfBlock:
        """Revoke the chosen subscription from the subscriber's side."""
        subs = self._subscriber("pick a subscriber and one of its subscriptions")
        if self.subscription.value is None:
            raise MarketError("pick a subscriber and one of its subscriptions")
        block: HalfBlock = subs.revoke(self.subscription.value)
        self.show_info(f"{self.subscriber.value} revoked {self.subscription.value[:8]}")
        self.changed()
        self.refresh()
        return block

    # --- the simulated meter ------------------------------------------------------------

    def _refresh_meter(self) -> None:
        metered = self._metered if self._metered in self.lab.peers else None
        if metered is None and self._metered is not None:  # its peer stopped: the meter is no one's now
            self._metered = None
        names = [name for name, peer in self._market_peers().items()
                 if subscription_service_of(peer) is None or peer is metered]
        self.pick(self.meter_peer, names)
        if metered is not None:
            self._let_everyone_subscribe()

    def _let_everyone_subscribe(self) -> None:
        """Give every market peer without subscriptions a plain SubscriptionService (to subscribe)."""
        from enerdatx.market.subscription import SubscriptionService

        for peer in self._market_peers().values():
            if subscription_service_of(peer) is None:
                peer.add_service(SubscriptionService())

    def start_meter(self) -> asyncio.Task[MeterSimulator | None]:
        """Start a simulated P1 meter on 127.0.0.1 that the chosen peer reads; send its first telegram; a task."""

        async def start() -> MeterSimulator:
            from enerdatx.market.subscription import SubscriptionService
            from enerdatx.meter import synthetic_household
            from enerdatx.meter.simulator import MeterSimulator

            peer = self._market_peers().get(self.meter_peer.value) if self.meter_peer.value is not None else None
            if peer is None:
                raise MarketError("start some peers first")
            if self._metered is not None and self._metered in self.lab.peers:
                raise MarketError(f"{peer_name(self._metered)} reads a meter already: one meter per workbench")
            if subscription_service_of(peer) is not None:
                raise MarketError(f"{peer_name(peer)} subscribes already: pick a peer without subscriptions")
            await self.stop_meter()
            readings = synthetic_household(seed=self.household.value, start="2026-03-01", days=1, resolution="15min",
                                           household_type="family")
            with self.working("Starting the meter", 2) as advance:
                meter = await MeterSimulator(readings).start()  # loopback only, a free port
                if peer not in self.lab.peers:  # Stop all ran meanwhile: a meter of no one's, and "Peer(…) was stopped"
                    await meter.close()
                    raise MarketError("the peers stopped before the meter started")
                self.meter, self.meter_readings, self._metered = meter, readings, peer
                peer.add_service(SubscriptionService(meter=meter.url, meter_timeout=2.0))
                self._let_everyone_subscribe()
                await meter.send(1)  # the reading at 00:00: offers start from the first stored reading
                await self._stored(peer, 1)
                advance(2)
            self.refresh()
            self.show_info(f"{peer_name(peer)} reads a meter at {meter.url}; offer a subscription, then send periods")
            self.changed()
            return meter

        return self.attempt_async(start)

    async def _stored(self, peer: Peer, sent: int, timeout: float = 10.0) -> None:
        """Wait until ``peer`` stored the meter's first ``sent`` telegrams (the reader is a thread)."""
        service = subscription_service_of(peer)
        assert service is not None and service.readings is not None and self.meter_readings is not None
        target = self.meter_readings.index[sent - 1]
        deadline = time.monotonic() + timeout
        while (latest := service.readings.latest()) is None or latest < target:
            if time.monotonic() > deadline:
                raise MeterDataError(f"{peer_name(peer)} did not read the meter's telegrams within {timeout:.0f} s")
            await asyncio.sleep(0.02)

    def send_period(self) -> asyncio.Task[list[int] | None]:
        """Send one period of telegrams of the seller's newest offer; wait until subscribers paid for it; a task."""

        async def send() -> list[int]:
            peer, meter = self._metered, self.meter
            if peer is None or meter is None or peer not in self.lab.peers:
                raise MarketError("start a meter first")
            service = subscription_service_of(peer)
            assert service is not None
            subs = service.subscriptions
            offers = [o for o in subs.live_offers() if o.seller == subs.public_key]
            if not offers:
                raise MarketError(f"{peer_name(peer)} offers no subscription yet: offer one first")
            telegrams = max(1, offers[-1].period_ms // 900_000)  # the meter sends a reading every 15 minutes
            before = set(subs.periods)
            with self.working("Sending a period", 3) as advance:
                if await meter.send(telegrams) == 0:
                    raise MeterDataError("the meter has sent its whole day")
                await self._stored(peer, meter.sent)
                service.publish_due()  # the reader's batch lists it too; whichever runs first, once
                advance()
                listed = sorted(set(subs.periods) - before)
                payers = await self._paid(listed)
                advance(2)
            self.refresh()
            periods = ", ".join(str(period) for _, period in listed) or "none"
            self.show_info(f"{meter.sent} telegrams sent; period {periods} listed; "
                           f"paid and decrypted by {', '.join(payers) or 'nobody'}")
            self.changed()
            return [period for _, period in listed]

        return self.attempt_async(send)

    async def _paid(self, listed: list[tuple[str, int]], timeout: float = 10.0) -> list[str]:
        """Wait until every active subscriber of the listed periods paid for and decrypted them; their names."""
        payers: list[str] = []
        for name, subs in self._subscriptions().items():
            for held in list(subs.held.values()):
                agreement = held.agreement
                for offer_id, period in listed:
                    if (agreement.offer.hex() != offer_id or period < agreement.first_period
                            or subs.subscription_status(agreement.subscription_id) != "active"):
                        continue

                    def done(h: Held = held, p: int = period) -> bool:
                        return h.trades.get(p) is not None or p in h.failed

                    await subs.wait_for(done, timeout)
                    if held.trades.get(period) is not None and name not in payers:
                        payers.append(name)
        return payers

    async def stop_meter(self) -> None:
        """Stop the simulated meter (the peers stay). Not ``close``: that is ipywidgets' (closing the comm)."""
        if self.meter is not None:
            await self.meter.close()
            self.meter = None
