"""Regression tests for bugs the fuzzers and hostile-peer tests found in other areas."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from enerdatx.errors import MeterDataError, ReadingsFormatError
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


def test_london_csv_with_utc_offsets_is_a_typed_error() -> None:
    # Found by the readings_csv fuzz target: tz_localize raised TypeError on offset-carrying times.
    from enerdatx.errors import ReadingsFormatError
    from enerdatx.meter import read_csv

    data = b"LCLid,tstp,energy(kWh/hh)\nMAC900001,2026-01-01 00:00:00+01:00,0.1\nMAC900001,2026-01-01 00:30:00+01:00,0.2\n"
    with pytest.raises(ReadingsFormatError):
        read_csv(data)


def test_car_header_with_a_huge_byte_string_length_is_a_car_error() -> None:
    # Found by the car fuzz target: dag-cbor raised OverflowError.
    import io

    from enerdatx.errors import CarFormatError
    from enerdatx.ipfs.car import read_car

    header = b"\xa1\x61a\x5b" + b"\xff" * 8  # {"a": bytes of length 2**64 - 1}
    with pytest.raises(CarFormatError):
        read_car(io.BytesIO(bytes([len(header)]) + header))


def test_market_formats_refuse_true_as_version() -> None:
    # Found by the negotiation_step fuzz target: {"v": true} passed as version 1 (True == 1).
    import cbor2

    from enerdatx.errors import EncodingError
    from enerdatx.market.formats import parse_payment
    from enerdatx.market.negotiation import decode_step

    step = {"v": True, "negotiation": "0f" * 16, "listing": bytes(32), "step": "accept", "price": 12, "reason": None}
    with pytest.raises(EncodingError):
        decode_step(cbor2.dumps(step, canonical=True))
    with pytest.raises(EncodingError):
        parse_payment({"v": True, "listing": bytes(32), "amount": 5, "negotiation": None})


def test_standing_request_with_maps_as_keys_is_refused_at_once() -> None:
    # Found by the standing_request fuzz target: 19 maps nested as keys took 10 s to re-encode.
    import time

    import cbor2

    from enerdatx.errors import EncodingError
    from enerdatx.market.negotiation import StandingRequest

    nested = b"\x01"
    for _ in range(24):
        nested = b"\xa1" + nested + b"\x01"
    data = b"\xa2" + cbor2.dumps("v") + b"\x01" + nested + b"\x01"
    started = time.process_time()
    with pytest.raises(EncodingError):
        StandingRequest.decode(data)
    assert time.process_time() - started < 1.0  # 2**24 re-encodings before the fix


def test_crawl_request_beyond_the_sequence_range_is_ignored() -> None:
    # Found by the trustchain_message fuzz target: start 2**63 overflowed SQLite in the handler.
    from enerdatx.trustchain.payload import CrawlRequestMessage
    from fuzz.network import harness

    h = harness()
    handler = h.peer.community.decode_map[CrawlRequestMessage.msg_id].__wrapped__
    for start, end in ((2**63, 0), (1, 2**64 - 1), (2**64 - 1, 2**64 - 1)):
        handler(h.peer.community, h.sender, CrawlRequestMessage(1, h.peer.public_key, start, end))


def test_file_node_linking_to_a_non_cid_is_an_encoding_error(tmp_path: Path) -> None:
    # Found by the unixfs_cat fuzz target: a link to "CIDv26" raised multiformats' ValueError.
    from enerdatx.errors import EncodingError
    from enerdatx.ipfs import EmbeddedStore
    from enerdatx.ipfs.blocks import cid_string, make_cid
    from enerdatx.ipfs.dagpb import PBLink, PBNode, UnixFSData, encode_node, encode_unixfs

    node = encode_node(PBNode((PBLink(b"\x1a\x55\x12\x20" + bytes(32), "", 1),), encode_unixfs(UnixFSData(2, None, 1, (1,)))))
    store = EmbeddedStore(tmp_path)
    cid = make_cid("dag-pb", node, 0)
    store.blocks.put(cid, node)
    with pytest.raises(EncodingError):
        store.cat(cid_string(cid))


async def test_market_community_drops_a_flooding_sender(tmp_path: Path) -> None:
    # Found by the flood scenario: the market community had no rate limit, and each fetch request
    # makes a seller send a whole ciphertext, so one flooder drew many answers per packet.
    from enerdatx.bench.scenarios import flood

    limits = {"rate_per_second": 20, "rate_burst": 20}  # low, so that a slow machine still floods them
    figures = await flood(tmp_path, packets=3000, seed=5, limits=limits)
    assert figures["flood_honest_trade_completed"]
    assert figures["flood_dropped_market"] > 0
    assert figures["flood_answers_sent"] < 3000


def test_car_header_with_an_empty_cid_is_a_car_error() -> None:
    # Found by the car fuzz target: dag-cbor raised IndexError on tag 42 around empty bytes.
    import io

    from enerdatx.errors import CarFormatError
    from enerdatx.ipfs.car import read_car

    header = b"\xa2eroots\x81\xd8\x2a\x40gversion\x01"
    with pytest.raises(CarFormatError):
        read_car(io.BytesIO(bytes([len(header)]) + header))


def test_london_csv_with_a_bad_energy_value_and_a_shifted_index_names_the_row() -> None:
    # Found by the readings_csv fuzz target: a row with an extra field made pandas index by LCLid,
    # and the error message's row number raised ValueError.
    from enerdatx.errors import ReadingsFormatError
    from enerdatx.meter import read_csv

    data = b"LCLid,tstp,energy(kWh/hh)\nMAC800002,2026-03-01 00:00:00,x,1\n"
    with pytest.raises(ReadingsFormatError):
        read_csv(data)


def test_rest_ask_for_a_period_far_outside_the_readings_is_refused_at_once() -> None:
    # Found by the rest_body fuzz target: a start in the year 1011 cut 4.4 million empty intervals (12 s).
    import json
    import time

    from fuzz.network import REST_ROUTES, harness

    h = harness()
    body = {"readings_id": "fuzz", "price": 12, "resolution": "2h", "location": "2628", "start": "1011-01-01T00:00:00Z"}
    started = time.process_time()

    async def put() -> tuple[int, dict]:
        response = await h.client.put("/market/asks", data=json.dumps(body),
                                      headers={"Authorization": f"Bearer {h.rest.token}"})
        return response.status, await response.json()

    status, answer = h.run(put())
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    assert time.process_time() - started < 2.0
    assert ("PUT", "/market/asks") in REST_ROUTES


def test_cid_of_a_hash_function_needing_an_optional_package_is_an_invalid_cid() -> None:
    # Found by the car fuzz target: a keccak-256 CID made multiformats raise ImportError (no pycryptodome).
    import base64
    import io

    from enerdatx.errors import CarFormatError, InvalidCIDError
    from enerdatx.ipfs.blocks import parse_cid
    from enerdatx.ipfs.car import read_car

    raw = bytes([1, 0x55, 0x1B, 32]) + bytes(32)  # CIDv1, raw, keccak-256
    try:
        parse_cid("b" + base64.b32encode(raw).decode().lower().rstrip("="))
    except InvalidCIDError:
        pass  # without pycryptodome; with it, the CID is simply valid
    header = b"\xa2eroots\x80gversion\x01"
    section = raw + b"x"
    car = bytes([len(header)]) + header + bytes([len(section)]) + section
    with pytest.raises((CarFormatError, InvalidCIDError)):
        list(read_car(io.BytesIO(car))[1])  # either unsupported or not the hash of b"x"


def test_rest_max_price_with_a_superscript_digit_is_a_bad_request() -> None:
    # Found by the rest_body fuzz target: "1¹".isdigit() is True, int() then raised: a 500.
    from fuzz.network import harness

    h = harness()

    async def get() -> int:
        response = await h.client.get("/market/asks", params={"max_price": "1\u00b9"},
                                      headers={"Authorization": f"Bearer {h.rest.token}"})
        return response.status

    assert h.run(get()) == 400


def test_london_csv_with_a_header_only_is_a_typed_error() -> None:
    # Found by the readings_csv fuzz target: no row meant no household, and households[0] raised IndexError.
    from enerdatx.errors import ReadingsFormatError
    from enerdatx.meter import read_csv

    with pytest.raises(ReadingsFormatError):
        read_csv(b"LCLid,tstp,energy(kWh/hh),.074")



def test_a_csv_whose_last_line_holds_a_carriage_return_is_read_or_refused_by_type() -> None:
    # Found by the readings_csv fuzz target: the check for a file cut inside its last row split
    # lines at \n only, and csv.reader refused the \r left in the field (csv.Error).
    from enerdatx.meter import read_csv

    data = b"t\x01\x00enerph)\n\r\x00\x00\x00\x00\x00\x00\x00M26-01-01T0103-01"
    with pytest.raises(ReadingsFormatError):
        read_csv(data)
    cut = b"interval_start,import_wh\r\n2026-01-01T00:00:00Z,5\r\n2026-01-01T00:15:00Z"
    with pytest.raises(ReadingsFormatError, match="cut short"):  # \r\n files are checked as well
        read_csv(cut)


def test_an_aggregate_query_decodes_only_from_its_canonical_encoding() -> None:
    # Found by the aggregate_query fuzz target: "2026-01-01T00:00:00+00:00" decoded and re-encoded
    # as "...Z", so one question had two encodings and two query ids.
    from enerdatx.errors import EncodingError
    from enerdatx.market.query import AggregateQuery
    from enerdatx.trustchain.encoding import encode_transaction

    loose = encode_transaction({"v": 1, "question": "peak_hour", "start": "2026-01-01T00:00:00+00:00",
                                "end": "2026-02-01T00:00:00Z"})
    with pytest.raises(EncodingError, match="YYYY-MM-DD"):
        AggregateQuery.decode(loose)
    canonical = AggregateQuery("peak_hour", "2026-01-01", "2026-02-01").encode()
    assert AggregateQuery.decode(canonical).encode() == canonical


@pytest.mark.parametrize(("start", "end"), [
    ("2026-03-02T00:00:00+01:00", "2026-03-03T00:00:00"),  # pandas: "timezones do not agree", a TypeError
    ("1677-09-22", "2262-04-11"),  # a round of 20 million intervals, built before anything was checked
    ("infinity", "2026-03-03"),
])
def test_a_bad_round_announcement_is_refused_quietly(start, end) -> None:
    # Found by the union_message fuzz target: dates in the RoundMessage reached pandas unchecked.
    from enerdatx.crypto import Identity
    from enerdatx.meter import synthetic_household
    from enerdatx.trustchain import BlockStore, TrustChain
    from enerdatx.union import UnionMember, UnionTerms
    from enerdatx.union.service import RoundMessage, UnionService

    operator = Identity.from_seed(bytes([5]) * 32)
    terms = UnionTerms.create(operator, "fuzzed", threshold=2)
    service = UnionService()
    ledger = TrustChain(Identity.from_seed(bytes([6]) * 32), BlockStore(":memory:"))
    member = UnionMember(ledger, terms, synthetic_household(seed=1, start="2026-03-02", days=1))
    member.join()
    service.memberships[terms.terms_hash] = member
    roster = b"".join(sorted((operator.public_key, ledger.public_key)))
    # No community is attached: reaching the send would raise AttributeError.
    service.receive_round(operator.public_key, RoundMessage(terms.terms_hash, bytes(32), start, end, roster))


def test_market_texts_utf8_cannot_encode_are_encoding_errors() -> None:
    # Found by the widget and REST sweep: JSON's "\udcff" (a lone surrogate) raised a bare
    # UnicodeEncodeError, a 500 from the REST API and a codec message in the panels.
    from enerdatx.errors import EncodingError
    from enerdatx.market.formats import validate_descriptor
    from enerdatx.market.subscription_formats import Terms, revocation_transaction, terms_dict

    with pytest.raises(EncodingError, match="descriptor value 'kind'"):
        validate_descriptor({"kind": "\udcff"})
    with pytest.raises(EncodingError, match="purpose must be text that UTF-8 can encode"):
        terms_dict(Terms("\udcff", 30, False))
    with pytest.raises(EncodingError, match="reason must be text that UTF-8 can encode"):
        revocation_transaction(b"\x00" * 32, "\udcff")
