"""``enerdatx meter synth`` given bad options: a usage error naming the option, and no file written."""

from __future__ import annotations

import pytest

from enerdatx.cli import main
from enerdatx.cli.meter import untimed_clock
from enerdatx.meter import read_dsmr, render_telegrams, synthetic_household
from enerdatx.meter.telegrams import VARIANTS, WITHOUT_GAS


@pytest.mark.parametrize(("location", "why"), [
    ("", "must not be blank, not ''"),
    ("   ", "must not be blank, not '   '"),
    (" 2628", "must neither begin nor end with white space, not ' 2628'"),
    ("2628\n", "must neither begin nor end with white space, not '2628\\n'"),
])
def test_a_blank_or_padded_location_is_a_usage_error(tmp_path, capsys, location: str, why: str) -> None:
    # "" and " " were taken: a household of no place, and "2628 " other data than "2628".
    out = tmp_path / "h.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["meter", "synth", "--days", "1", "--location", location, "--out", str(out)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"enerdatx meter synth: error: argument --location: location {why}"
    assert not out.exists()


@pytest.mark.parametrize("days", ["0", "-1", "3661", "9" * 30, "1.5"])
def test_days_out_of_range_is_a_usage_error(tmp_path, capsys, days: str) -> None:
    # Was "enerdatx: error: days must be a whole number between 1 and 3660" (exit 1), naming no option.
    out = tmp_path / "h.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["meter", "synth", "--days", days, "--out", str(out)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"enerdatx meter synth: error: argument --days: expected a whole number from 1 to 3,660, got '{days}'")
    assert not out.exists()


@pytest.mark.parametrize("variant", WITHOUT_GAS)
def test_gas_for_telegrams_without_a_gas_register_is_refused(tmp_path, capsys, variant: str) -> None:
    # The gas was made, then left out of every telegram without a word.
    out = tmp_path / "p1.txt"
    assert main(["meter", "synth", "--days", "1", "--gas", "--telegrams", variant, "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"enerdatx: error: --gas: {variant} telegrams carry no gas register "
                                       "(those of v2.2, v3, v4, v5, fluvius, smarty do)\n")
    assert not out.exists()


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_variants_without_gas_are_those_whose_telegrams_drop_it(variant: str) -> None:
    readings = synthetic_household(days=1, resolution="1h", gas=True).iloc[:3]
    clock = untimed_clock(readings.index[0], 3600, [])
    read = read_dsmr("".join(render_telegrams(readings, variant)), clock=clock)
    assert read["gas_m3"].isna().all() == (variant in WITHOUT_GAS)


def test_telegrams_from_a_start_within_a_second_are_refused(tmp_path, capsys) -> None:
    # A telegram's time is in whole seconds: every reading was written half a second early.
    out = tmp_path / "p1.txt"
    assert main(["meter", "synth", "--days", "1", "--start", "2026-01-01 00:00:00.5", "--telegrams", "v5",
                 "--out", str(out)]) == 1
    assert capsys.readouterr().err == ("enerdatx: error: --start: P1 telegrams carry times in whole seconds, "
                                       "not '2026-01-01 00:00:00.5'\n")
    assert not out.exists()
