"""The data-union panel: pool k households securely, let members leave, see what is sold."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from enerdatx.crypto import Identity
from enerdatx.meter import HOUSEHOLD_TYPES, synthetic_household
from enerdatx.trustchain import BlockStore, TrustChain
from enerdatx.union import DataUnion, UnionAggregate, UnionMember, UnionTerms

from .panel import Panel, show_figure

__all__ = ["UnionPanel", "union_figure"]

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

    def leave(self) -> Any:
        """The chosen member records its leaving; the next aggregate is without it."""
        if self.union is None or self.leaver.value is None:
            raise ValueError("found the union and pick a member first")
        index = self.leaver.value
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
