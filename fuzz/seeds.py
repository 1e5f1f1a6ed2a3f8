"""Seed inputs per fuzz target, made from the test vectors and the sample data (valid inputs reach deep code)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parent.parent
VECTORS = ROOT / "tests" / "vectors"
DATA = ROOT / "data"


def seeds(name: str) -> list[bytes]:
    """Valid example inputs for a target."""
    maker = _MAKERS.get(name)
    return list(maker()) if maker else []


def write_seeds(name: str, corpus: Path) -> None:
    """Put the seeds into a corpus directory (idempotent)."""
    for index, data in enumerate(seeds(name)):
        path = corpus / f"seed-{index}"
        if not path.exists():
            path.write_bytes(data)


def _rows(file_name: str) -> list[dict[str, str]]:
    with open(VECTORS / file_name, newline="") as handle:
        return list(csv.DictReader(handle))


def _blocks() -> list[bytes]:
    return [bytes.fromhex(row["encoded"]) for row in _rows("trustchain_blocks.csv")]


def _proofs() -> list[bytes]:
    return [bytes.fromhex(row["encoded"]) for row in _rows("fraud_proofs.csv")]


@cache
def _market_blocks() -> dict[str, bytes]:
    """A listing, its withdrawal, a payment and a complaint, signed by the vector identities."""
    from enerdatx.crypto import Identity
    from enerdatx.market.formats import (
        COMPLAINT,
        LISTING,
        PAYMENT,
        WITHDRAWAL,
        complaint_transaction,
        listing_transaction,
        payment_transaction,
        withdrawal_transaction,
    )
    from enerdatx.trustchain import BlockStore, TrustChain

    clock = lambda: 1_767_225_600_000  # noqa: E731 - 2026-01-01, like the vectors
    seller = TrustChain(Identity.from_seed(bytes([1]) * 32), BlockStore(":memory:", fsync=False), clock=clock)
    buyer = TrustChain(Identity.from_seed(bytes([2]) * 32), BlockStore(":memory:", fsync=False), clock=clock)
    descriptor = {"kind": "electricity", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
                  "resolution_seconds": 3600, "n_readings": 24, "location": "2628", "household_type": "family",
                  "tags": ["pv", 2, None, True]}
    listing = seller.record(LISTING, listing_transaction(
        descriptor, 15, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", bytes(range(32)), 1_800_000_000_000))
    withdrawal = seller.record(WITHDRAWAL, withdrawal_transaction(listing.hash))
    payment = buyer.propose(seller.public_key, PAYMENT, payment_transaction(listing.hash, 15, "ab" * 16))
    complaint = buyer.record(COMPLAINT, complaint_transaction(
        listing.hash, payment.hash, seller.public_key, "commitment_mismatch", bytes(64)))
    return {"listing": listing.encode(), "withdrawal": withdrawal.encode(), "payment": payment.encode(),
            "complaint": complaint.encode()}


def _market_transactions() -> list[bytes]:
    from enerdatx.trustchain import HalfBlock
    from enerdatx.trustchain.encoding import encode_transaction

    blocks = [HalfBlock.decode(data) for data in _market_blocks().values()]
    agreement = {**blocks[2].transaction, "sealed_key": bytes(112)}
    return [encode_transaction(b.transaction) for b in blocks] + [encode_transaction(agreement)]


def _steps() -> list[bytes]:
    from enerdatx.market.negotiation import Step, encode_step

    listing = bytes(range(32))
    return [encode_step(Step("0f" * 16, listing, "propose", 10)), encode_step(Step("0f" * 16, listing, "accept", 12)),
            encode_step(Step("0f" * 16, listing, "decline", None, "too_expensive"))]


def _requests() -> list[bytes]:
    from enerdatx.crypto import Identity
    from enerdatx.market.negotiation import StandingRequest
    from enerdatx.market.orderbook import Query

    buyer = Identity.from_seed(bytes([2]) * 32)
    return [
        StandingRequest.create(buyer, Query(kind="gas", area="26", max_price=20), created=1767225600000).encode(),
        StandingRequest.create(buyer, Query(kind="electricity", start="2026-01-01T00:00:00Z", end="2026-02-01T00:00:00Z",
                                            resolution="1h", household_type="family", max_price=99),
                               created=1767225600000, expires=1767229200000).encode(),
    ]


def _sample_bytes() -> list[bytes]:
    return [b"hello world\n", bytes(range(256)) * 40]


def _car_files() -> list[bytes]:
    import tempfile

    from enerdatx.ipfs import EmbeddedStore

    out = []
    with tempfile.TemporaryDirectory() as directory:
        store = EmbeddedStore(directory)
        for version, data in ((0, b"hello world\n"), (1, b"hello world\n"), (0, bytes(300_000))):
            cid = store.add_bytes(data, cid_version=version)
            path = Path(directory) / "out.car"
            store.export_car(cid, path)
            out.append(path.read_bytes())
    return out


def _dagpb_blocks() -> list[bytes]:
    import tempfile

    from enerdatx.ipfs import EmbeddedStore

    with tempfile.TemporaryDirectory() as directory:
        store = EmbeddedStore(directory)
        store.add_bytes(b"hello world\n")
        store.add_bytes(bytes(300_000))
        store.add_bytes(b"")
        return [store.blocks.get(cid) for cid in store.blocks if len(store.blocks.get(cid)) < 4096]


def _telegrams() -> list[bytes]:
    import pandas as pd

    from enerdatx.meter import render_telegram

    reading = {"timestamp": pd.Timestamp("2026-10-25T00:30:00Z"), "import_t1_kwh": 1.5, "import_t2_kwh": 2.0,
               "export_t1_kwh": 0.25, "export_t2_kwh": 0.5, "power_import_w": 420.0, "power_export_w": 0.0,
               "gas_m3": 12.5, "gas_timestamp": pd.Timestamp("2026-10-25T00:30:00Z")}
    out = [render_telegram(reading, variant).encode("latin-1") for variant in ("v5", "v4", "v2.2", "fluvius")]
    with gzip.open(DATA / "household-1-family-10s-p1-v5.txt.gz", "rt", encoding="latin-1") as handle:
        out.append(handle.read(4000).rpartition("/")[0].encode("latin-1"))
    return out


def _oehu() -> list[bytes]:
    document = json.loads((DATA / "household-4-retired-oehu.json").read_text())
    items = document["transactions"][:4]
    return [json.dumps({"transactions": items}).encode(), json.dumps(items[:2]).encode()]


def _csv() -> list[bytes]:
    from enerdatx.meter import synthetic_household, write_csv

    frame = synthetic_household(seed=3, days=1, resolution="1h", location="2628")
    buffer = io.StringIO()
    write_csv(frame, buffer)
    london = gzip.open(DATA / "london-smart-meters-sample.csv.gz", "rt").read(3000).rpartition("\n")[0]
    return [buffer.getvalue().encode(), london.encode()]


def _message(index: int, message: object) -> bytes:
    from ipv8.messaging.serialization import default_serializer

    return bytes([index]) + default_serializer.pack_serializable(message)


def _trustchain_messages() -> list[bytes]:
    from enerdatx.trustchain.payload import (
        MESSAGES,
        AgreementMessage,
        BlockBroadcastMessage,
        CrawlRequestMessage,
        CrawlResponseMessage,
        FraudProofMessage,
        ProposalMessage,
        RejectionMessage,
    )

    blocks, proof = _blocks(), _proofs()[0]
    market = list(_market_blocks().values())
    samples = [
        *(ProposalMessage(b, []) for b in (blocks[0], market[2])), AgreementMessage(blocks[1]),
        RejectionMessage(1, "price_too_low"), CrawlRequestMessage(7, bytes(32), 1, 0),
        CrawlResponseMessage(7, 2, blocks[:2]), BlockBroadcastMessage(2, blocks[2]),
        BlockBroadcastMessage(1, market[0]), FraudProofMessage(proof),
    ]
    return [_message(MESSAGES.index(type(m)), m) for m in samples]


def _market_messages() -> list[bytes]:
    from enerdatx.market.payload import (
        MESSAGES,
        FetchRequestMessage,
        FetchResponseMessage,
        ListingsRequestMessage,
        NegotiationMessage,
        RecordMessage,
        RequestMessage,
    )

    market = _market_blocks()
    samples = [
        RecordMessage(market["listing"]), RecordMessage(market["withdrawal"]), RecordMessage(market["complaint"]),
        ListingsRequestMessage(1), FetchRequestMessage(3, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", 0),
        FetchResponseMessage(3, 0, 1, b"ciphertext"), *(NegotiationMessage(s) for s in _steps()),
        *(RequestMessage(r) for r in _requests()),
    ]
    return [_message(MESSAGES.index(type(m)), m) for m in samples]


def _query_messages() -> list[bytes]:
    from enerdatx.market.query import AggregateQuery
    from enerdatx.market.query_service import MESSAGES, AnswerMessage, QueryMessage

    query = AggregateQuery("peak_hour", "2026-03-02", "2026-03-04").encode()
    samples = [QueryMessage(1, query, 10), QueryMessage(2, query, 0), AnswerMessage(1, "00" * 32, "")]
    return [_message(MESSAGES.index(type(m)), m) for m in samples]


def _union_messages() -> list[bytes]:
    from enerdatx.crypto import Identity
    from enerdatx.union import UnionTerms
    from enerdatx.union.service import MESSAGES, ContributionMessage, MembershipMessage, RoundMessage

    member = UnionTerms.create(Identity.from_seed(bytes([0xF0]) * 32), "fuzz-member", threshold=2)
    market = _market_blocks()
    roster = b"".join(sorted(Identity.from_seed(bytes([i]) * 32).public_key for i in (1, 2, 0xF0)))
    samples = [MembershipMessage(market["listing"]),
               RoundMessage(member.terms_hash, bytes(32), "2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00",
                            roster),
               ContributionMessage(bytes(32), 96, bytes(8 * 192))]
    return [_message(MESSAGES.index(type(m)), m) for m in samples]


def _rest_bodies() -> list[bytes]:
    from fuzz.network import REST_ROUTES

    def route(method: str, path: str) -> bytes:
        return bytes([REST_ROUTES.index((method, path))])

    listing = "00" * 32
    return [
        route("PUT", "/market/asks") + json.dumps({"readings_id": "fuzz", "price": 12, "resolution": "1h",
                                                   "location": "2628", "start": "2026-01-01T00:00:00Z"}).encode(),
        route("PUT", "/market/bids") + json.dumps({"kind": "electricity", "area": "26", "max_price": 20}).encode(),
        route("PUT", "/market/bids") + json.dumps({"listing_id": listing, "price": 5}).encode(),
        route("POST", "/data/buy") + json.dumps({"listing_id": listing, "amount": 10}).encode(),
        route("POST", "/data/readings") + _csv()[0][:2000].rpartition(b"\n")[0],
        route("GET", "/market/asks") + b"kind=electricity&area=26&max_price=20&status=all",
    ]


_MAKERS = {
    "halfblock": _blocks,
    "transaction": lambda: [bytes.fromhex(row["transaction_cbor"]) for row in _rows("trustchain_blocks.csv")],
    "fraud_proof": _proofs,
    "market_transaction": _market_transactions,
    "negotiation_step": _steps,
    "standing_request": _requests,
    "car": _car_files,
    "dagpb": _dagpb_blocks,
    "unixfs_cat": _dagpb_blocks,
    "dsmr": _telegrams,
    "oehu": _oehu,
    "readings_csv": _csv,
    "union_terms": lambda: [bytes.fromhex(row["encoded"]) for row in _rows("union_terms.csv")],
    "aggregate_query": lambda: [__import__("enerdatx.market.query", fromlist=["AggregateQuery"]).AggregateQuery(
        question, "2026-01-01", "2026-02-01").encode() for question in ("mean_daily_profile", "peak_hour",
                                                                         "monthly_total")],
    "trustchain_message": _trustchain_messages,
    "market_message": _market_messages,
    "rest_body": _rest_bodies,
    "query_message": _query_messages,
    "union_message": _union_messages,
}
