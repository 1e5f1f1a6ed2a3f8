"""The privacy panel: measure a data set before it is listed, before and after coarsening."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as widgets

from enerdatx.meter import HOUSEHOLD_TYPES, cut_dataset, synthetic_household
from enerdatx.privacy import PrivacyPolicy, PrivacyReport, privacy_report
from enerdatx.privacy.plots import coarsening_figure

from .panel import Panel, show_figure

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
    """Measure a household's data set against the reference population and a listing policy."""

    def __init__(self) -> None:
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
        self.dataset: Any = None
        self.report: PrivacyReport | None = None
        super().__init__("Privacy", [
            widgets.HBox([self.seed, self.days, self.household]),
            widgets.HBox([self.location, self.resolution]),
            widgets.HBox([self.max_score, self.measure_button]),
            self.figures, self.verdict, self.plot,
        ])
        self.measure_button.on_click(lambda _: self.measure())
        self.max_score.observe(lambda _: self._judge(), "value")

    def use(self, dataset: Any) -> asyncio.Task[Any]:
        """Measure a given data set (e.g. the meter panel's) instead of a synthetic household."""
        return self.measure(dataset)

    def measure(self, dataset: Any = None) -> asyncio.Task[Any]:
        """Cut (unless given) and measure the data set off the event loop; a task."""

        async def measure() -> PrivacyReport:
            with self.working("Measuring", 2) as advance:
                chosen = dataset if dataset is not None else cut_dataset(
                    synthetic_household(seed=self.seed.value, start="2026-03-02", days=self.days.value,
                                        household_type=self.household.value, location=self.location.value),
                    resolution=self.resolution.value, location=self.location.value,
                    household_type=self.household.value)
                advance()
                report = await asyncio.to_thread(privacy_report, chosen)
                advance()
            self.dataset, self.report = chosen, report
            self.figures.value = report_html(report)
            show_figure(self.plot, coarsening_figure(report))
            self._judge()
            return report

        return self.attempt_async(measure)

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
