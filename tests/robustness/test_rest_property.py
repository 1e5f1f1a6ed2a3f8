"""A property: no JSON body and no query string makes the REST API answer with a 5xx (issue 13).

Hypothesis drives every route of one running peer (the fuzz harness: a peer with its market
and REST API on its own event loop) with arbitrary JSON documents, objects built from the
API's own field names with hostile values (huge, negative, zero, NaN, unicode, nested), and
query strings; every answer must be below 500, and every error a JSON object.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.network import harness

ROUTES_WITH_BODY = (
    ("PUT", "/market/asks"),
    ("PUT", "/market/bids"),
    ("POST", "/data/buy"),
)
GET_ROUTES = (
    "/market/asks", "/market/bids", "/market/transactions", "/wallets", "/data/readings", "/data/purchases",
    "/openapi.json",
)
FIELDS = (
    "readings_id", "price", "start", "end", "resolution", "location", "household_type", "kind", "expires_in",
    "listing_id", "amount", "max_price", "area", "status", "again",
)

hostile_numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**53, 2**63, 2**64, -(2**63), 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["fuzz", "", "2026-01-01", "1011-01-01T00:00:00Z", "15min", "0min", "-1h", "P1D", "\u0000",
                     "1\u00b9", "٣", "9" * 2500, "NaN", "electricity", "family", "2628", "all"]),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)
documents = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
api_objects = st.dictionaries(st.sampled_from(FIELDS), st.one_of(scalars, documents), max_size=6)
bodies = st.one_of(api_objects, documents)
# At most three values: aiohttp itself answers a request line beyond 8,190 bytes (plain text 400).
queries = st.lists(st.tuples(st.sampled_from((*FIELDS, "x")), hostile_text), max_size=3)


def _request(method: str, path: str, *, data: bytes | None = None, params=None) -> tuple[int, str, bytes]:
    h = harness()
    headers = {"Authorization": f"Bearer {h.rest.token}"}

    async def call() -> tuple[int, str, bytes]:
        response = await h.client.request(method, path, data=data, params=params, headers=headers)
        return response.status, response.content_type, await response.read()

    try:
        return h.run(call())
    finally:  # uploads and standing requests stay in memory; keep only the harness's own
        for key in [k for k in h.rest.readings if k != "fuzz"]:
            del h.rest.readings[key]


def _assert_answer(status: int, content_type: str, answer: bytes) -> None:
    assert status < 500, (status, answer[:300])
    if status >= 400:
        assert content_type == "application/json", (status, content_type)
        assert set(json.loads(answer)["error"]) == {"code", "message"}


def _encode(document: object) -> bytes:
    # NaN and Infinity are what Python's json emits and reads for non-finite floats: send them too.
    return json.dumps(document, allow_nan=True).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES_WITH_BODY), body=bodies)
def test_no_json_body_gets_a_5xx(route: tuple[str, str], body: object) -> None:
    _assert_answer(*_request(*route, data=_encode(body)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(GET_ROUTES), query=queries)
def test_no_query_string_gets_a_5xx(path: str, query: list[tuple[str, str]]) -> None:
    _assert_answer(*_request("GET", path, params=query))


@settings(max_examples=100, deadline=None)
@given(method=st.sampled_from(("GET", "DELETE")), identifier=hostile_text)
def test_no_listing_id_in_a_path_gets_a_5xx(method: str, identifier: str) -> None:
    path = "/data/purchases/" if method == "GET" else "/market/asks/"
    from urllib.parse import quote

    _assert_answer(*_request(method, path + quote(identifier or "x", safe="")))


def test_the_cases_of_issue_13_are_400s() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    for route in ROUTES_WITH_BODY:
        status, _, answer = _request(*route, data=deep)
        assert status == 400 and b"nested too deeply" in answer
        status, _, answer = _request(*route, data=b'{"price": ' + b"7" * 100_000 + b"}")
        assert status == 400 and b"too many digits" in answer
    status, _, answer = _request("GET", "/market/asks", params={"max_price": "5" * 5000})
    assert status == 400 and b"max_price" in answer
    assert math.isnan(json.loads("NaN"))  # what the server reads for a NaN: refused as not an integer
    status, _, answer = _request("PUT", "/market/asks", data=b'{"readings_id": "fuzz", "price": NaN}')
    assert status == 400


def test_a_standing_request_with_a_negative_or_zero_expiry_is_refused() -> None:
    for expires_in in (-1, 0, -(10**30)):
        status, _, answer = _request("PUT", "/market/bids", data=_encode({"max_price": 10, "expires_in": expires_in}))
        assert status == 400, answer
    status, _, _ = _request("PUT", "/market/bids", data=_encode({"max_price": 10, "expires_in": 60_000}))
    assert status == 201
