"""Plotly figures of readings: consumption over time, a daily-profile heatmap, the tariff split."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from enerdatx.meter.resample import interval_consumption

__all__ = ["consumption_figure", "daily_profile_heatmap", "tariff_split_figure"]


def consumption_figure(readings: pd.DataFrame, resolution: str = "1h") -> go.Figure:
    """Imported and exported energy (kWh) and gas (m3) per interval over time."""
    amounts = interval_consumption(readings, resolution)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=amounts.index, y=amounts["import_kwh"], name="import kWh", mode="lines"))
    if amounts["export_kwh"].fillna(0).any():
        fig.add_trace(go.Scatter(x=amounts.index, y=-amounts["export_kwh"], name="export kWh (negative)",
                                 mode="lines"))
    if amounts["gas_m3"].notna().any():
        fig.add_trace(go.Scatter(x=amounts.index, y=amounts["gas_m3"], name="gas m3", mode="lines",
                                 yaxis="y2"))
        fig.update_layout(yaxis2={"title": f"m3 per {resolution}", "overlaying": "y", "side": "right"})
    fig.update_layout(title="Consumption", xaxis_title="time (UTC)", yaxis_title=f"kWh per {resolution}",
                      hovermode="x unified")
    return fig


def daily_profile_heatmap(readings: pd.DataFrame, resolution: str = "1h",
                          timezone: str = "Europe/Amsterdam") -> go.Figure:
    """Import per time of day (x) and date (y) in local time: the household's daily rhythm."""
    amounts = interval_consumption(readings, resolution)["import_kwh"]
    local = amounts.tz_convert(timezone)
    table = pd.DataFrame({"date": local.index.date, "time": local.index.strftime("%H:%M"),
                          "kwh": local.to_numpy()})
    grid = table.pivot_table(index="date", columns="time", values="kwh", aggfunc="sum", dropna=False)
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=list(grid.columns), y=[str(d) for d in grid.index],
                               colorbar={"title": "kWh"}, colorscale="Viridis"))
    fig.update_layout(title=f"Daily profile (import per {resolution}, {timezone})", xaxis_title="time of day",
                      yaxis_title="date")
    return fig


def tariff_split_figure(readings: pd.DataFrame, resolution: str = "1D") -> go.Figure:
    """Import and export per tariff (t1 low, t2 normal) as stacked bars per interval."""
    amounts = interval_consumption(readings, resolution)
    fig = go.Figure()
    for column, label in (("import_t1_kwh", "import tariff 1 (low)"), ("import_t2_kwh", "import tariff 2 (normal)"),
                          ("export_t1_kwh", "export tariff 1"), ("export_t2_kwh", "export tariff 2")):
        values = amounts[column]
        if values.fillna(0).any():
            sign = -1 if column.startswith("export") else 1
            fig.add_trace(go.Bar(x=amounts.index, y=sign * values, name=label))
    fig.update_layout(barmode="relative", title="Tariff split", xaxis_title="time (UTC)",
                      yaxis_title=f"kWh per {resolution}")
    return fig
