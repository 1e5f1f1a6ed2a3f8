import json

from enerdatx.cli import main


def test_trustchain_benchmark_reports_consistent_figures(capsys):
    assert main(["bench", "trustchain", "--json", "--transactions", "50", "--crawl-blocks", "60", "--no-progress"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["transactions"] == 50 and figures["crawl_blocks"] == 60
    bound = 1e6 / (2 * figures["ed25519_sign_us"] + 2 * figures["ed25519_verify_us"])
    assert abs(figures["ed25519_bound_tx_per_s"] - bound) / bound < 0.01
    # The durable figure is held against the Ed25519 bound plus two fsyncs of this disk.
    durable = 1e6 / (2 * figures["ed25519_sign_us"] + 2 * figures["ed25519_verify_us"] + 2 * figures["fsync_us"])
    assert figures["fsync_us"] > 0
    assert abs(figures["durable_bound_tx_per_s"] - durable) / durable < 0.01
    for suffix, against in (("", "durable_bound_tx_per_s"), ("_no_fsync", "ed25519_bound_tx_per_s"),
                            ("_memory_store", "ed25519_bound_tx_per_s")):
        tx_per_s = figures[f"tx_per_s{suffix}"]
        assert abs(tx_per_s - 50 / figures[f"seconds{suffix}"]) / tx_per_s < 0.01
        ratio = figures[f"ratio_to_bound{suffix}"]
        assert abs(ratio - tx_per_s / figures[against]) < 0.002
