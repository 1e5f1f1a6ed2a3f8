"""Regression tests for bugs the fuzzers and hostile-peer tests found in other areas."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from enerdatx.errors import MeterDataError
from enerdatx.meter import read_dsmr


def test_dsmr_source_that_is_a_directory_is_a_typed_error(tmp_path: Path) -> None:
    # Found by the dsmr fuzz target: b"" became the path "." and raised IsADirectoryError.
    with pytest.raises(MeterDataError):
        read_dsmr(str(tmp_path))
    with pytest.raises(MeterDataError):
        read_dsmr("")


def test_dsmr_gz_file_that_is_not_gzip_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "telegrams.txt.gz"
    path.write_bytes(b"/ISk5\\2MT382-1000\r\n\r\n!0000\r\n")
    with pytest.raises(MeterDataError):
        read_dsmr(path)
    path.write_bytes(gzip.compress(b"/ISk5")[:-6])  # cut short
    with pytest.raises(MeterDataError):
        read_dsmr(path)
