import json

from enerdatx.cli import main


def test_privacy_benchmark_runs_small_and_its_union_sum_is_exact(capsys):
    arguments = ["--days", "14", "--repeats", "1", "--members", "5", "--union-days", "1", "--json"]
    assert main(["bench", "privacy", *arguments]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["report_intervals"] == 14 * 96 and figures["population"] == 120
    assert figures["union_sum_exact"] is True and figures["union_values_per_member"] == 192
    assert 0 <= figures["report_score"] <= 100
    assert figures["report_cold_s"] > 0 and figures["union_unmask_s"] >= 0
