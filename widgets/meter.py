"""The meter-data panel: read readings from a source, plot them, and cut a data set to sell."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from enerdatx.errors import MeterDataError
from enerdatx.meter import HOUSEHOLD_TYPES, DataSet, cut_dataset, read_csv, read_dsmr, read_oehu, synthetic_household
from enerdatx.meter.dsmr import parse_tcp_source
from enerdatx.meter.plots import consumption_figure

from .panel import Panel, show_figure

__all__ = ["MeterPanel", "SOURCES"]

SOURCES = {
    "synthetic": "synthetic household",
    "dsmr": "DSMR P1 telegrams (file)",
    "dsmr-tcp": "DSMR P1 telegrams (socket, host:port)",
    "oehu": "OEHU JSON (file)",
    "csv": "CSV (file)",
}


class MeterPanel(Panel):
    """Pull readings from sample data, a DSMR file or socket, OEHU JSON or CSV; plot; cut a data set."""

    def __init__(self) -> None:
        self.source = widgets.Dropdown(options=[(label, key) for key, label in SOURCES.items()], description="Source")
        self.path = widgets.Text(description="File", placeholder="path, or host:port for a socket")
        self.seed = widgets.IntText(value=1, description="Seed", layout={"width": "160px"})
        self.days = widgets.BoundedIntText(value=7, min=1, max=366, description="Days", layout={"width": "160px"})
        self.household = widgets.Dropdown(options=sorted(HOUSEHOLD_TYPES), value="family", description="Household")
        self.location = widgets.Text(value="2628", description="Area", layout={"width": "200px"})
        self.resolution = widgets.Dropdown(options=["15min", "1h", "1D"], value="1h", description="Resolution")
        self.load_button = widgets.Button(description="Load readings", icon="download", button_style="primary")
        self.load_button.add_class("edx-load-readings")
        self.plot = widgets.Output()
        self.readings: pd.DataFrame | None = None
        self.dataset: DataSet | None = None
        self._synthetic_box = widgets.HBox([self.seed, self.days])
        super().__init__(
            "Meter data",
            [
                widgets.HBox([self.source, self.path]),
                self._synthetic_box,
                widgets.HBox([self.household, self.location, self.resolution]),
                self.load_button,
                self.plot,
            ],
        )
        self.source.observe(lambda _: self._show_source_fields(), "value")
        self.load_button.on_click(lambda _: self.load())
        self._show_source_fields()

    def _show_source_fields(self) -> None:
        synthetic = self.source.value == "synthetic"
        self.path.layout.display = "none" if synthetic else None
        self._synthetic_box.layout.display = None if synthetic else "none"

    def read(self) -> pd.DataFrame:
        """Read the chosen source (blocking); raises MeterDataError and friends on bad input."""
        source = self.source.value
        if source == "synthetic":
            return synthetic_household(
                seed=self.seed.value, days=self.days.value, household_type=self.household.value,
                location=self.location.value,
            )  # fmt: skip
        where = self.path.value.strip()
        if not where:
            raise MeterDataError(f"give a {'host:port' if source == 'dsmr-tcp' else 'file path'} to read from")
        if source == "dsmr-tcp":
            url = where if where.startswith("tcp://") else f"tcp://{where}"
            try:
                parse_tcp_source(url)
            except MeterDataError:  # its message showed a tcp:// the person never typed
                raise MeterDataError(f"expected HOST:PORT with a port from 1 to 65535, got {where!r}") from None
            return read_dsmr(url)
        if not Path(where).exists():
            raise MeterDataError(f"{where}: no such file")
        readers: dict[str, Callable[[Path], pd.DataFrame]] = {"dsmr": read_dsmr, "oehu": read_oehu, "csv": read_csv}
        return readers[source](Path(where))

    def load(self) -> asyncio.Task[DataSet | None]:
        """Read (off the event loop, so peers keep running), plot, and cut a data set; a task."""

        async def load() -> DataSet:
            with self.working("Reading", 2) as advance:
                readings = await asyncio.to_thread(self.read)
                advance()
                dataset = cut_dataset(
                    readings, resolution=self.resolution.value, location=self.location.value,
                    household_type=self.household.value,
                )  # fmt: skip
                advance()
            self.readings, self.dataset = readings, dataset
            self._plot(readings)
            descriptor = dataset.descriptor
            self.show_info(
                f"{len(readings)} readings; data set of {descriptor['n_readings']} intervals"
                f" from {descriptor['start']} to {descriptor['end']}, ready to sell"
            )
            self.changed()
            return dataset

        return self.attempt_async(load)

    def _plot(self, readings: pd.DataFrame) -> None:
        figure = consumption_figure(readings, self.resolution.value)
        show_figure(self.plot, figure)
