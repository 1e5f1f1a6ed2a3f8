"""The workbench: every panel over one Lab of local peers, in tabs, kept in step with each other."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from enerdatx.errors import NetworkError
from enerdatx.lab import Lab, Transport
from enerdatx.market.service import MarketService
from enerdatx.meter import cut_dataset, synthetic_household

from .attack import ForkPanel
from .chain import ChainExplorer
from .market import MarketPanel
from .meter import MeterPanel
from .peers import PeersPanel
from .privacy import PrivacyPanel
from .purchases import PurchasesPanel
from .subscriptions import SubscriptionsPanel
from .tables import peer_name
from .union import LabUnionPanel

if TYPE_CHECKING:
    from enerdatx.meter.dataset import DataSet
    from enerdatx.peer import Peer
    from enerdatx.trustchain import HalfBlock

__all__ = ["Workbench"]

TITLES = ("Peers", "Meter data", "Market", "Purchases", "Chain explorer", "Attack", "Subscriptions", "Privacy", "Union")
# Blocks arrive in bursts (a trade is two, a crawl many): redraw once per burst, not per block.
REDRAW_DELAY_SECONDS = 0.25


class Workbench(widgets.VBox):
    """Every panel over one Lab (a market on every peer), in tabs.

    Peers, meter data, market, purchases, chain explorer, an attack, live subscriptions (with a
    simulated meter on 127.0.0.1), privacy reports, and a data union of the lab's peers.

    In a notebook: ``wb = Workbench()``, ``await wb.start(3)``, then show ``wb``.
    """

    def __init__(self, lab: Lab | None = None, *, directory: str | Path | None = None, transport: Transport = "memory") -> None:
        self.lab = lab or Lab(directory, transport, market=True, progress=False)
        self.peers = PeersPanel(self.lab)
        self.meter = MeterPanel()
        self.market = MarketPanel(self.lab, self.dataset_for)
        self.purchases = PurchasesPanel(self.lab)
        self.chain = ChainExplorer({})
        self.attack = ForkPanel(self.lab)
        self.subscriptions = SubscriptionsPanel(self.lab, simulator=True)
        self.privacy = PrivacyPanel(self.lab, self.dataset_for)
        self.union = LabUnionPanel(self.lab)
        self.panels = (self.peers, self.meter, self.market, self.purchases, self.chain, self.attack,
                       self.subscriptions, self.privacy, self.union)
        self.tabs = widgets.Tab(children=self.panels, titles=TITLES)
        self.tabs.add_class("edx-workbench")
        super().__init__([widgets.HTML("<h3>EnerDatX workbench</h3>"), self.tabs])
        for panel in self.panels:
            panel.observe(self._refresh_others, "revision")
        self.market.observe(self._show_purchase, "last_trade")
        self._followed: set[int] = set()
        self._redraw: asyncio.TimerHandle | None = None
        self._refresh_others({"owner": None})

    @property
    def markets(self) -> list[MarketService]:
        """The market service of every running peer, in the lab's order."""
        return [peer.market for peer in self.lab.peers]

    async def start(self, n: int = 3) -> list[Peer]:
        """Start ``n`` more peers (with the panel's progress bar) and return all of them."""
        peers = await self.peers.start(n)
        if peers is None:  # the panel showed why; a script needs it raised
            raise NetworkError(f"peers did not start: {self.peers.error}")
        return peers

    async def stop(self) -> None:
        """Stop the simulated meter and every peer (the widgets stay, showing the last state).

        Not ``close``: that is ipywidgets' own (closing the widget's comm), which ipywidgets
        calls when a widget is collected; an ``async close`` there was never awaited.
        """
        await self.subscriptions.stop_meter()
        await self.peers.settle()  # a start under way would refuse the stop: the peers would run on
        await self.peers.stop()

    def dataset_for(self, peer: Peer) -> DataSet:
        """What ``peer`` sells from the market panel: the meter panel's data set, else its own synthetic household."""
        if self.meter.dataset is not None:
            return self.meter.dataset
        seed = self.lab.peers.index(peer) if peer in self.lab.peers else 0
        readings = synthetic_household(seed=seed, days=7, location="2628")
        return cut_dataset(readings, resolution="1h", location="2628", household_type="family")

    def refresh(self) -> None:
        """Read everything again."""
        self._refresh_others({"owner": None})

    def _refresh_others(self, change: dict[str, Any]) -> None:
        for peer in self.lab.peers:
            if id(peer.ledger) not in self._followed:
                self._followed.add(id(peer.ledger))
                peer.ledger.subscribe(self._on_block)
        self.chain.set_ledgers({peer_name(peer): peer.ledger for peer in self.lab.peers})
        for panel in self.panels:
            if panel is not change["owner"] and panel is not self.chain:
                panel.attempt(panel.refresh)

    def _on_block(self, _block: HalfBlock) -> None:
        """A peer stored a block (traded through the API or the network): redraw soon."""
        if self._redraw is None:
            self._redraw = asyncio.get_running_loop().call_later(REDRAW_DELAY_SECONDS, self._redraw_now)

    def _redraw_now(self) -> None:
        self._redraw = None
        self.refresh()

    def _show_purchase(self, change: dict[str, Any]) -> None:
        buyer, trade = change["new"]
        self.tabs.selected_index = self.panels.index(self.purchases)
        self.purchases.show(buyer, trade.listing.listing_id)
