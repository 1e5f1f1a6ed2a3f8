"""The privacy panel: measure a data set before it is listed, before and after coarsening.

Given a Lab (as in the workbench) it measures what a chosen peer would sell and lists the data
set from that peer only when the policy allows it, with the report's summary in the descriptor.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from enerdatx.errors import MarketError, PrivacyError
from enerdatx.meter import HOUSEHOLD_TYPES, cut_dataset, synthetic_household
from enerdatx.privacy import PrivacyPolicy, PrivacyReport, privacy_report, with_privacy_summary
from enerdatx.privacy.plots import coarsening_figure

from .panel import Panel, show_figure, whole_tokens
from .tables import peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.market.formats import Listing
    from enerdatx.meter.dataset import DataSet
    from enerdatx.peer import Peer

SOURCES = {"synthetic": "a synthetic household (below)", "seller": "what the seller sells"}

__all__ = ["PrivacyPanel", "report_html"]


def report_html(report: PrivacyReport) -> str:
    """The report's figures as a small HTML table."""
    reveals = report.reveals
    rows = [
        ("score", f"{report.score} / 100 ({report.method})"),
        ("linkage, top 1", f"{100 * report.linkage.accuracy:.1f} % (chance {100 * report.linkage.chance:.1f} %, "
                           f"p = {report.linkage.p_value:.1e})"),
        ("linkage, top 5", f"{100 * report.linkage_top5.accuracy:.1f} %"),
        ("uniqueness of own days", f"{100 * report.uniqueness:.1f} % (chance {100 * report.uniqueness_chance:.1f} %)"),
        ("this household's rank", "n/a" if report.household_rank is None else str(report.household_rank)),
        ("location digits", str(reveals["location_digits"])),
        ("household type", str(reveals["household_type"])),
        ("crowd of the descriptor", f"~{reveals['anonymity_set']:,} households"),
    ]
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="edx-privacy">{cells}</table>'


class PrivacyPanel(Panel):
    """Measure a household's data set against the reference population and a listing policy.

    With ``lab`` and ``dataset_for(peer)`` (the data set a peer sells) a seller is picked from
    the lab's peers: its data set can be measured, and the measured data set listed from it.
    """

    def __init__(self, lab: Lab | None = None, dataset_for: Callable[[Peer], DataSet] | None = None) -> None:
        self.lab = lab
        self.dataset_for = dataset_for
        self.source = widgets.Dropdown(options=[(label, key) for key, label in SOURCES.items()], value="synthetic",
                                       description="Measure")
        self.seller = widgets.Dropdown(description="Seller")
        self.price = widgets.Text(value="40", description="Price", layout={"width": "180px"})
        self.list_button = widgets.Button(description="List if allowed", icon="upload")
        self.seed = widgets.IntText(value=3, description="Seed", layout={"width": "160px"})
        self.days = widgets.BoundedIntText(value=14, min=1, max=366, description="Days", layout={"width": "160px"})
        self.household = widgets.Dropdown(options=sorted(HOUSEHOLD_TYPES), value="family", description="Household")
        self.location = widgets.Text(value="2628", description="Area", layout={"width": "200px"})
        self.resolution = widgets.Dropdown(options=["15min", "1h", "4h", "1D"], value="15min",
                                           description="Resolution")
        self.max_score = widgets.IntSlider(value=50, min=0, max=100, description="Max score")
        self.measure_button = widgets.Button(description="Measure", icon="user-secret", button_style="primary")
        self.figures = widgets.HTML("")
        self.verdict = widgets.HTML("")
        self.plot = widgets.Output()
        self.dataset: DataSet | None = None
        self.report: PrivacyReport | None = None
        seller_rows = [widgets.HBox([self.source, self.seller]), widgets.HBox([self.price, self.list_button])]
        super().__init__("Privacy", [
            widgets.HBox([self.seed, self.days, self.household]),
            widgets.HBox([self.location, self.resolution]),
            widgets.HBox([self.max_score, self.measure_button]),
            *(seller_rows if lab is not None else []),
            self.figures, self.verdict, self.plot,
        ])
        self.add_class("edx-privacy-panel")
        self.plot.add_class("edx-privacy-plot")
        self.measure_button.on_click(lambda _: self.measure())
        self.list_button.on_click(lambda _: self.attempt(self.list_dataset))
        self.max_score.observe(lambda _: self._judge(), "value")
        self.refresh()

    def _peers(self) -> dict[str, Peer]:
        return {} if self.lab is None else {peer_name(peer): peer for peer in self.lab.peers if peer.has_market}

    def _seller(self) -> Peer:
        peer = self._peers().get(self.seller.value) if self.seller.value is not None else None
        if peer is None:
            raise MarketError("start some peers first")
        return peer

    def refresh(self) -> None:
        """Read the running peers again (the sellers offered)."""
        self.pick(self.seller, list(self._peers()))

    def use(self, dataset: DataSet) -> asyncio.Task[PrivacyReport | None]:
        """Measure a given data set (e.g. the meter panel's) instead of a synthetic household."""
        return self.measure(dataset)

    def measure(self, dataset: DataSet | None = None) -> asyncio.Task[PrivacyReport | None]:
        """Cut (unless given) and measure the data set off the event loop; a task."""

        async def measure() -> PrivacyReport:
            # What was measured before goes first: after a failed measure (new fields, a bad
            # area), "List if allowed" listed the earlier data set its report still described.
            self.dataset = self.report = None
            self.figures.value = self.verdict.value = ""
            with self.working("Measuring", 2) as advance:
                chosen = dataset if dataset is not None else self._chosen_dataset()
                advance()
                report = await asyncio.to_thread(privacy_report, chosen)
                advance()
            self.dataset, self.report = chosen, report
            self.figures.value = report_html(report)
            show_figure(self.plot, coarsening_figure(report))
            self._judge()
            return report

        return self.attempt_async(measure)

    def _chosen_dataset(self) -> DataSet:
        """The seller's data set, or the synthetic household the fields describe."""
        if self.source.value == "seller":
            seller = self._seller()
            if self.dataset_for is None:
                raise MarketError("this panel was given no data sets of peers")
            return self.dataset_for(seller)
        readings = synthetic_household(seed=self.seed.value, start="2026-03-02", days=self.days.value,
                                       household_type=self.household.value, location=self.location.value)
        return cut_dataset(readings, resolution=self.resolution.value, location=self.location.value,
                           household_type=self.household.value)

    def list_dataset(self) -> Listing:
        """The seller lists the measured data set, with the report's summary, if the policy allows it."""
        seller = self._seller()
        price = whole_tokens(self.price.value)
        if self.dataset is None or self.report is None:
            raise PrivacyError("measure a data set first")
        PrivacyPolicy(max_score=self.max_score.value).check(self.report)  # PrivacyRiskError: nothing listed
        listing = seller.market.sell(with_privacy_summary(self.dataset, self.report), price)
        self.show_info(f"{peer_name(seller)} listed {listing.listing_id[:12]} for {listing.price} "
                       f"(privacy score {self.report.score} in its descriptor)")
        self.changed()
        return listing

    def _judge(self) -> None:
        if self.report is None:
            return
        try:
            PrivacyPolicy(max_score=self.max_score.value).check(self.report)
        except Exception as exc:  # noqa: BLE001 - PrivacyRiskError: shown as the verdict
            self.verdict.value = f'<span class="edx-refused">refused: {html.escape(str(exc))}</span>'
            self.show_info(f"score {self.report.score}: above the policy's {self.max_score.value}")
        else:
            self.verdict.value = '<span class="edx-allowed">allowed by the policy</span>'
            self.show_info(f"score {self.report.score}: may be listed")
