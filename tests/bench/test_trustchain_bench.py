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
