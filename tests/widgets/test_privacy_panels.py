"""The privacy and union panels, headless: set values, press, assert on what they show."""

from __future__ import annotations

import numpy as np

from enerdatx.meter import cut_dataset, interval_consumption, synthetic_household
from enerdatx.widgets import PrivacyPanel, UnionPanel


async def test_privacy_panel_measures_and_applies_the_policy():
    panel = PrivacyPanel()
    panel.seed.value, panel.days.value, panel.resolution.value = 3, 14, "15min"
    report = await panel.measure()
    assert panel.error == "", panel.error
    assert report.score == panel.report.score and 0 < report.score < 100
    assert "linkage, top 1" in panel.figures.value and "crowd of the descriptor" in panel.figures.value
    figure = panel.plot.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert [trace["name"] for trace in figure["data"]] == ["linkage, top 1", "linkage, top 5",
                                                          "uniqueness of own days"]
    assert figure["data"][0]["x"] == ["PT15M", "PT1H", "PT4H", "P1D"]
    panel.max_score.value = report.score - 1
    assert "refused" in panel.verdict.value
    panel.max_score.value = report.score
    assert "allowed" in panel.verdict.value


async def test_privacy_panel_measures_a_given_data_set_and_shows_bad_input():
    panel = PrivacyPanel()
    daily = cut_dataset(synthetic_household(seed=1, start="2026-03-02", days=14), resolution="1D")
    report = await panel.use(daily)
    assert report.resolution == "P1D" and panel.dataset is daily
    short = cut_dataset(synthetic_household(seed=1, days=1), start="2026-01-01T03:00", end="2026-01-01T05:00")
    assert await panel.use(short) is None
    assert "whole UTC day" in panel.error


def test_union_panel_aggregates_and_a_leaver_is_gone():
    panel = UnionPanel()
    panel.households.value, panel.threshold.value, panel.aggregate_kind.value = 6, 5, "sum"
    panel.found_button.click()
    assert panel.error == "" and len(panel.union.members) == 6
    panel.aggregate_button.click()
    first = panel.result
    assert first.dataset.descriptor["union_members"] == 6
    panel.leaver.value = 2
    panel.leave_button.click()
    assert panel.info == "household 2 left; 5 remain"
    assert 2 not in [value for _, value in panel.leaver.options]
    panel.aggregate_button.click()
    second = panel.result
    assert panel.members[2].public_key not in second.round.roster
    assert panel.members[2].is_member is False
    leaver_wh = interval_consumption(panel.members[2].readings, "15min", start="2026-03-02",
                                     end="2026-03-03")["import_kwh"].to_numpy() * 1000
    assert np.array_equal(first.total_wh - second.total_wh, np.clip(np.round(leaver_wh), 0, 2000))
    panel.leaver.value = 0
    panel.leave_button.click()
    panel.aggregate_button.click()
    assert "at least 5" in panel.error


def test_union_panel_noise_is_printed_in_the_descriptor():
    panel = UnionPanel()
    panel.epsilon.value = "0.5"
    panel.found_button.click()
    panel.aggregate_button.click()
    assert panel.result.dataset.descriptor["dp_epsilon"] == "0.5"
    panel.epsilon.value = "lots"
    panel.found_button.click()
    assert "epsilon" in panel.error


def test_union_panel_refuses_fewer_households_than_the_threshold():
    # It founded a union of 2 under a threshold of 5 ("2 households joined"): no aggregate could ever run.
    panel = UnionPanel()
    panel.households.value, panel.threshold.value = 2, 5
    panel.found_button.click()
    assert panel.error == "2 households, the threshold is 5"
    assert panel.union is None and panel.leaver.options == ()
