"""The data-union panels: pool k households securely, let members leave, see what is sold.

``UnionPanel`` runs a union of households in one process; ``LabUnionPanel`` (the workbench's)
runs one among the lab's peers over the network and sells its aggregate on their market.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from enerdatx.crypto import Identity
from enerdatx.errors import MarketError, UnionError
from enerdatx.market.formats import SHARE
from enerdatx.meter import HOUSEHOLD_TYPES, synthetic_household
from enerdatx.trustchain import BlockStore, HalfBlock, TrustChain
from enerdatx.union import DataUnion, UnionAggregate, UnionMember, UnionTerms
from enerdatx.union.service import UnionService

from .panel import Panel, show_figure, whole_tokens
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.market.market import Trade
    from enerdatx.peer import Peer

__all__ = ["LabUnionPanel", "UnionPanel", "union_figure", "union_service_of"]

START, END = "2026-03-02", "2026-03-03"


def union_figure(result: UnionAggregate) -> go.Figure:
    """The sold aggregate per interval (what a buyer gets) over the day."""
    fig = go.Figure(go.Scatter(x=result.starts, y=np.where(result.released_wh < 0, np.nan, result.released_wh),
                               name="sold aggregate", mode="lines"))
    descriptor = result.dataset.descriptor
    fig.update_layout(title=f"Union of {descriptor['union_members']} ({descriptor['aggregate']}"
                            f"{', epsilon ' + descriptor['dp_epsilon'] if 'dp_epsilon' in descriptor else ''})",
                      xaxis_title="time (UTC)", yaxis_title="Wh per interval")
    return fig


def _ledger(seed: int) -> TrustChain:
    return TrustChain(Identity.from_seed(seed.to_bytes(32, "big")), BlockStore(":memory:", fsync=False))


class UnionPanel(Panel):
    """An energy community in one process: households join, aggregate a day securely, leave."""

    def __init__(self) -> None:
        self.households = widgets.BoundedIntText(value=6, min=2, max=50, description="Households",
                                                 layout={"width": "200px"})
        self.threshold = widgets.BoundedIntText(value=5, min=2, max=50, description="Threshold",
                                                layout={"width": "200px"})
        self.aggregate_kind = widgets.Dropdown(options=["mean", "sum"], value="mean", description="Aggregate")
        self.epsilon = widgets.Text(value="", description="Epsilon", placeholder="none, or e.g. 1.0")
        self.found_button = widgets.Button(description="Found union", icon="users", button_style="primary")
        self.aggregate_button = widgets.Button(description="Aggregate a day", icon="plus-square")
        self.leaver = widgets.Dropdown(options=[], description="Member")
        self.leave_button = widgets.Button(description="Leave", icon="sign-out")
        self.plot = widgets.Output()
        self.union: DataUnion | None = None
        self.members: list[UnionMember] = []
        self.result: UnionAggregate | None = None
        super().__init__("Data union", [
            widgets.HBox([self.households, self.threshold]),
            widgets.HBox([self.aggregate_kind, self.epsilon, self.found_button]),
            widgets.HBox([self.aggregate_button, self.leaver, self.leave_button]),
            self.plot,
        ])
        self.found_button.on_click(lambda _: self.attempt(self.found))
        self.aggregate_button.on_click(lambda _: self.attempt(self.aggregate))
        self.leave_button.on_click(lambda _: self.attempt(self.leave))

    def found(self) -> DataUnion:
        """Sign the terms and let every household join."""
        # Fewer households than the threshold founded a union that could never aggregate.
        if self.households.value < self.threshold.value:
            raise UnionError(f"{self.households.value} households, the threshold is {self.threshold.value}")
        operator = _ledger(1000)
        terms = UnionTerms.create(operator.identity, "workbench", threshold=self.threshold.value,
                                  aggregate=self.aggregate_kind.value, epsilon=self.epsilon.value.strip() or None)
        self.union = DataUnion(terms, operator)
        types = sorted(HOUSEHOLD_TYPES)
        self.members = [UnionMember(_ledger(i + 1), terms, synthetic_household(
            seed=i, start=START, days=1, household_type=types[i % len(types)])) for i in range(self.households.value)]
        for member in self.members:
            self.union.receive(member.join())
        self._list_members()
        self.show_info(f"{len(self.members)} households joined (threshold {terms.threshold})")
        self.changed()
        return self.union

    def aggregate(self) -> UnionAggregate:
        """One secure round over today's members: the operator sees only the total."""
        if self.union is None:
            raise ValueError("found the union first")
        round_ = self.union.open_round(START, END)
        active = [m for m in self.members if m.public_key in self.union.members]
        self.result = self.union.aggregate(round_, START, END, [m.contribute(round_, START, END) for m in active])
        show_figure(self.plot, union_figure(self.result))
        self.show_info(f"aggregate of {len(round_.roster)} members: {int(self.result.total_wh.sum())} Wh in the day")
        return self.result

    def leave(self) -> UnionMember:
        """The chosen member records its leaving; the next aggregate is without it."""
        if self.union is None or self.leaver.value is None:
            raise ValueError("found the union and pick a member first")
        index: int = self.leaver.value
        member = self.members[index]
        self.union.receive(member.leave())
        self._list_members()
        self.show_info(f"household {index} left; {len(self.union.members)} remain")
        self.changed()
        return member

    def _list_members(self) -> None:
        assert self.union is not None
        options = [(f"household {i}", i) for i, m in enumerate(self.members) if m.public_key in self.union.members]
        self.pick(self.leaver, options)


def union_service_of(peer: Peer) -> UnionService | None:
    """A lab peer's UnionService, or None."""
    return next((s for s in peer.services if isinstance(s, UnionService)), None)


def _union_service(peer: Peer) -> UnionService:
    service = union_service_of(peer)
    if service is None:
        service = UnionService()
        peer.add_service(service)
    return service


class LabUnionPanel(Panel):
    """A data union of the lab's peers: found it, let peers join, aggregate securely, sell, split, leave.

    Each member pools a synthetic week of its own (seeded by its place in the lab); only masked
    vectors leave it. A sale's revenue goes to the members by countersigned share transactions.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.operator = widgets.Dropdown(description="Operator")
        self.candidates = widgets.SelectMultiple(description="Members", rows=4)
        self.threshold = widgets.BoundedIntText(value=3, min=2, max=50, description="Threshold",
                                                layout={"width": "200px"})
        self.aggregate_kind = widgets.Dropdown(options=["mean", "sum"], value="mean", description="Aggregate")
        self.split = widgets.Dropdown(options=["equal", "readings"], value="equal", description="Split")
        self.epsilon = widgets.Text(value="", description="Epsilon", placeholder="none, or e.g. 1.0")
        self.found_button = widgets.Button(description="Found and join", icon="users", button_style="primary")
        self.days = widgets.BoundedIntText(value=1, min=1, max=7, description="Days", layout={"width": "160px"})
        self.aggregate_button = widgets.Button(description="Aggregate", icon="plus-square")
        self.buyer = widgets.Dropdown(description="Buyer")
        self.price = widgets.Text(value="50", description="Price", layout={"width": "180px"})
        self.sell_button = widgets.Button(description="Sell and split", icon="shopping-cart", button_style="success")
        self.leaver = widgets.Dropdown(description="Member")
        self.leave_button = widgets.Button(description="Leave", icon="sign-out")
        self.table = widgets.HTML()
        self.plot = widgets.Output()
        self.plot.add_class("edx-union-plot")
        self.union: DataUnion | None = None
        self.result: UnionAggregate | None = None
        self._operator_peer: Peer | None = None
        self._offered: set[str] = set()  # the candidates listed last time
        super().__init__("Data union of peers", [
            widgets.HBox([self.operator, self.candidates]),
            widgets.HBox([self.threshold, self.aggregate_kind, self.split]),
            widgets.HBox([self.epsilon, self.found_button]),
            widgets.HBox([self.days, self.aggregate_button]),
            widgets.HBox([self.buyer, self.price, self.sell_button]),
            widgets.HBox([self.leaver, self.leave_button]),
            self.table, self.plot,
        ])  # fmt: skip
        self.add_class("edx-union")
        self.when_picked(self.operator, self.refresh)
        self.found_button.on_click(lambda _: self.found())
        self.aggregate_button.on_click(lambda _: self.aggregate())
        self.sell_button.on_click(lambda _: self.sell())
        self.leave_button.on_click(lambda _: self.leave())
        self.refresh()

    # --- who is who -------------------------------------------------------------------

    def _peers(self) -> dict[str, Peer]:
        return {peer_name(peer): peer for peer in self.lab.peers if peer.has_market}

    def _operating(self) -> tuple[Peer, DataUnion]:
        if self.union is None or self._operator_peer not in self.lab.peers:
            raise UnionError("found a union first")
        return self._operator_peer, self.union

    def refresh(self) -> None:
        """Read the running peers, the union's members and what its sales paid out."""
        names = list(self._peers())
        self.pick(self.operator, names)
        others = [name for name in names if name != self.operator.value]
        # Peers new to the list start chosen; the user's choice among the others stays.
        chosen = [name for name in others if name in self.candidates.value or name not in self._offered]
        self._offered = set(others)
        self._quiet = True
        try:
            self.candidates.options = others
            self.candidates.value = tuple(chosen)
        finally:
            self._quiet = False
        if self.union is not None and self._operator_peer not in self.lab.peers:
            self.union, self.result = None, None  # its operator stopped
        self.pick(self.buyer, [name for name in others if self._peers()[name].public_key not in self._members()])
        members = self._members()
        self.pick(self.leaver, [name for name, peer in self._peers().items() if peer.public_key in members])
        self.table.value = frame_html(self.members_frame(), "edx-union-members", empty="no union yet", index=False)

    def _members(self) -> set[bytes]:
        return set() if self.union is None else set(self.union.members)

    def members_frame(self) -> pd.DataFrame:
        """One row per peer that joined: member now or not, the shares it received, its balance."""
        if self.union is None:
            return pd.DataFrame()
        terms_hash = self.union.terms.terms_hash
        rows = []
        for name, peer in self._peers().items():
            service = union_service_of(peer)
            if service is None or terms_hash not in service.memberships:
                continue
            shares = sum(block.transaction["amount"] for block in peer.store.chain(peer.public_key)
                         if block.type == SHARE and block.transaction.get("terms") == terms_hash)
            rows.append({"member": name, "in the union": peer.public_key in self.union.members,
                         "shares received": shares, "balance": peer.market.balance().available})
        return pd.DataFrame(rows, columns=["member", "in the union", "shares received", "balance"])

    # --- actions ----------------------------------------------------------------------

    def found(self) -> asyncio.Task[DataUnion | None]:
        """The operator signs the terms; each chosen peer joins with its own readings; a task."""

        async def found() -> DataUnion:
            peers = self._peers()
            operator = peers.get(self.operator.value) if self.operator.value is not None else None
            if operator is None:
                raise MarketError("start some peers first")
            chosen = [peers[name] for name in self.candidates.value if name in peers]
            if len(chosen) < self.threshold.value:
                raise UnionError(f"{len(chosen)} members chosen, the threshold is {self.threshold.value}")
            terms = UnionTerms.create(operator.identity, f"workbench-{peer_name(operator)}",
                                      threshold=self.threshold.value, aggregate=self.aggregate_kind.value,
                                      split=self.split.value, epsilon=self.epsilon.value.strip() or None)
            # The same terms again (Found clicked twice): the union and its members as they are.
            operating = _union_service(operator)
            union = operating.operated.get(terms.terms_hash) or operating.found(terms)
            types = sorted(HOUSEHOLD_TYPES)
            with self.working("Joining", len(chosen) + 1) as advance:
                for peer in chosen:
                    index = self.lab.peers.index(peer)
                    service = _union_service(peer)
                    service.readings = synthetic_household(seed=index, start=START, days=7,
                                                           household_type=types[index % len(types)])
                    member = service.memberships.get(terms.terms_hash)
                    if member is not None and member.is_member:
                        service.announce(terms.terms_hash)
                    else:
                        service.join(terms)
                    advance()
                await _union_service(operator).wait_for(lambda _: len(union.members) == len(chosen))
                advance()
            if operator not in self.lab.peers:  # Stop all ran meanwhile: it said "2 peers joined" of stopped peers
                raise UnionError("the peers stopped before the union was founded")
            self.union, self.result, self._operator_peer = union, None, operator
            self.refresh()
            self.show_info(f"{len(chosen)} peers joined the union of {peer_name(operator)} "
                           f"(threshold {terms.threshold})")
            self.changed()
            return union

        return self.attempt_async(found)

    def aggregate(self) -> asyncio.Task[UnionAggregate | None]:
        """The operator runs one secure round over the members' first ``days``; a task."""

        async def aggregate() -> UnionAggregate:
            operator, union = self._operating()
            end = pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=self.days.value)
            with self.working("Aggregating", 1):
                result = await _union_service(operator).run_round(union.terms.terms_hash, START, end)
            self.result = result
            show_figure(self.plot, union_figure(result))
            self.show_info(f"aggregate of {len(result.round.roster)} members: {int(result.total_wh.sum())} Wh")
            return result

        return self.attempt_async(aggregate)

    def sell(self) -> asyncio.Task[Trade | None]:
        """The operator lists the aggregate, the buyer buys it, the revenue is split to the members; a task."""

        async def sell() -> Trade:
            operator, union = self._operating()
            price = whole_tokens(self.price.value)
            if self.result is None:
                raise UnionError("aggregate a round first")
            buyer = self._peers().get(self.buyer.value) if self.buyer.value is not None else None
            if buyer is None:
                raise MarketError("pick a buyer that is not a member")
            with self.working("Selling", 3) as advance:
                listing = operator.market.sell(self.result.dataset, price)
                await buyer.market.wait_for_listing(listing.listing_id)  # asks again for one lost on the way
                advance()
                trade = await buyer.market.buy(listing.listing_id)
                advance()
                pairs = []
                for sale in union.sales(listing.block_hash):
                    pairs += await union.pay_out(operator.community.propose, sale, self.result)
                advance()
            self.refresh()
            self.show_info(f"{self.buyer.value} bought the aggregate for {trade.amount}; "
                           f"{len(pairs)} members were paid their shares")
            self.changed()
            return trade

        return self.attempt_async(sell)

    def leave(self) -> asyncio.Task[HalfBlock | None]:
        """The chosen member records its leaving; the next aggregate is without it; a task."""

        async def leave() -> HalfBlock:
            operator, union = self._operating()
            member = self._peers().get(self.leaver.value) if self.leaver.value is not None else None
            if member is None or member.public_key not in union.members:
                raise UnionError("pick a member of the union")
            block = _union_service(member).leave(union.terms.terms_hash)
            await _union_service(operator).wait_for(lambda _: member.public_key not in union.members)
            self.refresh()
            self.show_info(f"{peer_name(member)} left; {len(union.members)} remain")
            self.changed()
            return block

        return self.attempt_async(leave)
