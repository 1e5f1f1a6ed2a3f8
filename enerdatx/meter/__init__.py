"""Meter readings: DSMR P1 telegrams, OEHU readings, CSV files and synthetic households.

Every source becomes one canonical pandas shape (docs/readings.md); ``cut_dataset``
turns readings into the bytes that are sold and the descriptor that is public.
"""

from __future__ import annotations

from enerdatx.meter.csvfiles import london_meter_ids, read_csv, write_csv
from enerdatx.meter.dataset import FORMAT, DataSet, cut_dataset, load_dataset_bytes
from enerdatx.meter.dsmr import DSMRStats, detect_variant, parse_telegram, read_dsmr, read_dsmr_stream
from enerdatx.meter.oehu import OEHUClient, read_oehu
from enerdatx.meter.quality import QualityReport, clean_readings
from enerdatx.meter.resample import interval_consumption, resample_readings
from enerdatx.meter.schema import COLUMNS, REGISTER_COLUMNS, make_readings, validate_readings
from enerdatx.meter.synthetic import HOUSEHOLD_TYPES, synthetic_household
from enerdatx.meter.telegrams import render_telegram, render_telegrams

__all__ = [
    "COLUMNS", "REGISTER_COLUMNS", "FORMAT", "HOUSEHOLD_TYPES",
    "DataSet", "DSMRStats", "OEHUClient", "QualityReport",
    "clean_readings", "cut_dataset", "detect_variant", "interval_consumption", "load_dataset_bytes",
    "london_meter_ids", "make_readings", "parse_telegram", "read_csv", "read_dsmr", "read_dsmr_stream",
    "read_oehu", "render_telegram", "render_telegrams", "resample_readings", "synthetic_household",
    "validate_readings", "write_csv",
]
