"""Plotly figures of the privacy measurements: the linkage attack by resolution and by aggregation."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from enerdatx.privacy.attack import LinkageResult
from enerdatx.privacy.report import PrivacyReport

__all__ = ["coarsening_figure", "aggregation_figure"]


def coarsening_figure(report: PrivacyReport) -> go.Figure:
    """Top-1 and top-5 linkage accuracy and uniqueness per resolution, against chance."""
    table = report.table()
    fig = go.Figure()
    for column, name in (("linkage_top1", "linkage, top 1"), ("linkage_top5", "linkage, top 5"),
                         ("uniqueness", "uniqueness of own days")):
        fig.add_trace(go.Bar(x=list(table.index), y=(100 * table[column]).round(1).tolist(), name=name))
    fig.add_hline(y=100 * report.linkage.chance, line_dash="dot", annotation_text="chance (top 1)")
    fig.update_layout(title=f"Linkage attack on {report.population} households (score {report.score})",
                      xaxis_title="resolution", yaxis_title="%", barmode="group", yaxis_range=[0, 100])
    return fig


def aggregation_figure(results: Sequence[tuple[int, LinkageResult]]) -> go.Figure:
    """The attack on aggregates of k households: accuracy, chance, and the 0.1 % chance bound."""
    ks = [str(k) for k, _ in results]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=ks, y=[round(100 * r.accuracy, 1) for _, r in results], name="attack"))
    fig.add_trace(go.Scatter(x=ks, y=[round(100 * r.chance, 1) for _, r in results], name="chance",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=ks, y=[round(100 * r.chance_bound(), 1) for _, r in results],
                             name="chance bound (p = 0.001)", mode="lines", line={"dash": "dot"}))
    fig.update_layout(title="Re-identification of aggregates", xaxis_title="households per aggregate (k)",
                      yaxis_title="% of released weeks linked to a member")
    return fig
