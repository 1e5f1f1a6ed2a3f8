import json

from enerdatx.cli import main


def test_trustchain_benchmark_stores_every_transaction_and_every_crawled_block(capsys):
    assert main(["bench", "trustchain", "--json", "--transactions", "50", "--crawl-blocks", "60", "--no-progress"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["transactions"] == 50 and figures["crawl_blocks"] == 60
    # Both peers hold both halves of all 50 pairs, in each of the three stores; the crawler all 60.
    assert figures["blocks_stored"] == figures["blocks_stored_no_fsync"] == figures["blocks_stored_memory_store"] == 200
    assert figures["crawl_blocks_stored"] == 60
    assert all(figures[key] > 0 for key in ("seconds", "seconds_no_fsync", "seconds_memory_store", "ed25519_sign_us"))
    # The durable figure is held against the Ed25519 bound plus two fsyncs of this disk (measured).
    assert figures["fsync_us"] > 0 and figures["durable_bound_tx_per_s"] < figures["ed25519_bound_tx_per_s"]
    # Each ratio is the median of the slices' ratios, each against the bound measured just before.
    assert figures["slices"] == 10
    for suffix in ("", "_no_fsync", "_memory_store"):
        low, high = figures[f"ratio_to_bound{suffix}_range"]
        assert 0 < low <= figures[f"ratio_to_bound{suffix}"] <= high


def test_the_transactions_are_cut_into_slices_of_nearly_equal_size():
    from enerdatx.bench.trustchain import _slices

    assert _slices(50, 10) == [5] * 10
    assert _slices(23, 10) == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert _slices(3, 10) == [1, 1, 1]
    assert sum(_slices(5000, 10)) == 5000
