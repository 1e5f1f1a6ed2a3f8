"""Cutting data sets: the sold bytes (format, vectors, determinism) and the descriptor's privacy."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from enerdatx.errors import MeterDataError, ReadingsFormatError
from enerdatx.meter import DataSet, cut_dataset, load_dataset_bytes, make_readings, read_csv, synthetic_household
from enerdatx.meter.dataset import iso_duration

T0 = pd.Timestamp("2026-03-01T00:00:00Z")
VECTOR_1 = (
    b"# enerdatx-readings/1 kind=electricity resolution_seconds=900\n"
    b"interval_start,import_wh,export_wh,import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh\n"
    b"2026-03-01T00:00:00Z,150,0,150,0,0,0\n"
    b"2026-03-01T00:15:00Z,200,0,200,0,0,0\n"
    b"2026-03-01T00:30:00Z,175,0,175,0,0,0\n"
    b"2026-03-01T00:45:00Z,75,0,75,0,0,0\n"
)


def vector_readings() -> pd.DataFrame:
    """The readings of test vector 1 (docs/readings.md)."""
    times = [T0 + pd.Timedelta(minutes=m) for m in (0, 20, 40, 60)]
    return make_readings(times, {"import_t1_kwh": [10.0, 10.2, 10.5, 10.6], "import_t2_kwh": [5.0] * 4,
                                 "export_t1_kwh": [0.0] * 4, "export_t2_kwh": [0.0] * 4},
                         meter_id="m-vector", source="test")


def test_vector_1_bytes_and_descriptor() -> None:
    ds = cut_dataset(vector_readings(), start=T0, end=T0 + pd.Timedelta(hours=1), resolution="15min",
                     location="2628", household_type="single")
    assert ds.plaintext == VECTOR_1
    assert hashlib.sha256(ds.plaintext).hexdigest() == hashlib.sha256(VECTOR_1).hexdigest()
    assert ds.descriptor == {
        "format": "enerdatx-readings/1", "kind": "electricity", "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-01T01:00:00Z", "resolution": "PT15M", "resolution_seconds": 900, "n_readings": 4, "n_complete": 4,
        "location": "2628", "household_type": "single", "source": "test",
    }


def test_unknown_intervals_are_empty_fields_not_zero() -> None:
    times = [T0 + pd.Timedelta(minutes=m) for m in (0, 15, 30, 120, 135)]
    frame = make_readings(times, {"import_kwh": [1.0, 1.1, 1.3, 2.0, 2.05], "gas_m3": [7.0, 7.0, 7.1, 7.5, 7.6]},
                          meter_id="m", source="test")
    ds = cut_dataset(frame, start=T0, end=T0 + pd.Timedelta(minutes=135), resolution="15min", kind="electricity+gas")
    lines = ds.plaintext.decode().splitlines()
    assert lines[2] == "2026-03-01T00:00:00Z,100,,,,,,0"
    assert lines[4] == "2026-03-01T00:30:00Z,,,,,,,"
    assert lines[-1] == "2026-03-01T02:00:00Z,50,,,,,,100"
    frame_back = load_dataset_bytes(ds.plaintext)
    assert frame_back["import_wh"].isna().sum() == 6
    assert ds.descriptor["n_complete"] == 0  # no interval has every column


def test_sold_amounts_add_up_exactly_to_the_register_difference(month_15min: pd.DataFrame) -> None:
    start, end = pd.Timestamp("2026-01-03T00:00:00Z"), pd.Timestamp("2026-01-10T00:00:00Z")
    ds = cut_dataset(month_15min, start=start, end=end, resolution="1h", location="2628",
                     household_type="family")
    sold = load_dataset_bytes(ds.plaintext)
    assert len(sold) == 7 * 24 and sold.notna().all().all()
    for column, register, scale in (("import_wh", "import_kwh", 1000), ("export_t2_wh", "export_t2_kwh", 1000),
                                    ("gas_dm3", "gas_m3", 1000)):
        diff = month_15min.loc[end, register] - month_15min.loc[start, register]
        assert int(sold[column].sum()) == round(diff * scale)


def test_same_input_same_bytes_and_other_input_other_bytes(month_15min: pd.DataFrame) -> None:
    cut = dict(start="2026-01-05", end="2026-01-06", resolution="15min", location="2628", household_type="family")
    first, second = cut_dataset(month_15min, **cut), cut_dataset(month_15min.copy(), **cut)
    assert first.plaintext == second.plaintext and first.descriptor == second.descriptor
    other = cut_dataset(month_15min, **{**cut, "end": "2026-01-07"})
    assert other.plaintext != first.plaintext


def test_plain_pandas_opens_the_bytes(month_15min: pd.DataFrame) -> None:
    ds = cut_dataset(month_15min, start="2026-01-05", end="2026-01-06", resolution="15min")
    plain = pd.read_csv(io.BytesIO(ds.plaintext), comment="#", index_col="interval_start", parse_dates=True)
    ours = load_dataset_bytes(ds.plaintext)
    assert plain.index.tz is not None
    np.testing.assert_array_equal(plain.to_numpy(), ours.to_numpy(dtype="int64"))


def test_descriptor_reveals_no_reading(month_15min: pd.DataFrame) -> None:
    ds = cut_dataset(month_15min, start="2026-01-05", end="2026-01-12", resolution="15min", location="2628",
                     household_type="family")
    descriptor = ds.descriptor
    assert set(descriptor) == {"format", "kind", "start", "end", "resolution", "resolution_seconds", "n_readings", "n_complete",
                               "location", "household_type", "source"}
    assert all(type(v) in (int, str) for v in descriptor.values())
    text = json.dumps(descriptor)
    period = month_15min.loc["2026-01-05":"2026-01-12"]
    secrets = {month_15min["meter_id"].iloc[0]}
    for column in ("import_kwh", "import_t1_kwh", "export_kwh", "gas_m3", "power_import_w"):
        for value in period[column].dropna().unique()[:200]:
            secrets |= {f"{value}", f"{value:.3f}", str(int(round(value * 1000)))}
    sold = load_dataset_bytes(ds.plaintext)
    secrets |= {str(v) for v in sold["import_wh"].dropna().unique() if v > 999}
    leaked = sorted(s for s in secrets if len(s) >= 4 and s in text)
    # The only 4-digit numbers in the descriptor are the year and the postcode area.
    assert set(leaked) <= {"2026", "2628"}


@pytest.mark.parametrize("location", ["2628CD", "2628 CD", "Delft, Mekelweg 4", "12345"])
def test_fine_locations_are_refused(month_15min: pd.DataFrame, location: str) -> None:
    with pytest.raises(MeterDataError, match="not coarse"):
        cut_dataset(month_15min, start="2026-01-05", end="2026-01-06", location=location)


def test_bad_periods_are_refused(month_15min: pd.DataFrame) -> None:
    with pytest.raises(MeterDataError, match="not on the 15min grid"):
        cut_dataset(month_15min, start="2026-01-05T00:07:00Z", end="2026-01-06")
    with pytest.raises(MeterDataError, match="empty"):
        cut_dataset(month_15min, start="2026-01-06", end="2026-01-05")


@pytest.mark.parametrize(("data", "message"), [
    (b"hello\n", "bad first line"),
    (VECTOR_1.replace(b"readings/1", b"readings/9"), "unsupported data-set format"),
    (VECTOR_1.replace(b"kind=electricity", b"kind=water"), "unknown kind"),
    (VECTOR_1.replace(b",export_wh", b",export_kwh"), "do not match kind"),
    (VECTOR_1.replace(b"00:30:00Z", b"00:35:00Z"), "not consecutive"),
    (VECTOR_1.replace(b",175,", b",-175,"), "negative"),
    (VECTOR_1.replace(b",200,", b",2x0,"), "malformed"),
])
def test_load_rejects_what_is_not_the_format(data: bytes, message: str) -> None:
    with pytest.raises(ReadingsFormatError, match=message):
        load_dataset_bytes(data)


@pytest.mark.parametrize(("step", "text"), [("10s", "PT10S"), ("15min", "PT15M"), ("1h", "PT1H"),
                                            ("90min", "PT1H30M"), ("1D", "P1D")])
def test_resolution_as_iso_8601_duration(step: str, text: str) -> None:
    assert iso_duration(pd.Timedelta(step)) == text


@pytest.mark.parametrize("resolution", ["1.5s", "1500ms", "2.5s", "0s", "-15min", "7min"])
def test_a_resolution_of_no_whole_seconds_dividing_a_day_is_refused(resolution: str) -> None:
    # 1.5 s divides a day: the data set was cut at 1.5 s and its descriptor said resolution_seconds 1.
    from enerdatx.meter import synthetic_household

    frame = synthetic_household(seed=1, days=1)
    with pytest.raises(MeterDataError, match="must be whole seconds dividing a day"):
        cut_dataset(frame, resolution=resolution)


def test_dataset_frame_property() -> None:
    ds = DataSet(VECTOR_1, {})
    assert ds.frame["import_wh"].tolist() == [150, 200, 175, 75]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cut_dataset([1, 2]), "cut_dataset cuts readings .a DataFrame., not list"),  # an AttributeError
        (lambda: synthetic_household(days=True), "days must be a whole number between 1 and"),  # a TypeError
        (lambda: synthetic_household(days=2.5), "days must be a whole number between 1 and"),
        (lambda: read_csv(b"timestamp,import_kwh\n", tz="Mars/Base"), "tz must name a time zone"),  # zoneinfo's
        (lambda: read_csv(b"timestamp,import_kwh\n", tz=None), "tz must name a time zone"),
    ],
)
def test_readers_and_cutters_refuse_arguments_of_the_wrong_kind(call, message):
    with pytest.raises(MeterDataError, match=message):
        call()
