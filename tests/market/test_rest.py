"""The REST API end to end with an HTTP client: two peers trade through their APIs."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest

from enerdatx.errors import ConfigurationError, NetworkError
from enerdatx.lab import Lab
from enerdatx.market import rest
from enerdatx.market.rest import RestServer
from enerdatx.meter import load_dataset_bytes, synthetic_household, write_csv


@pytest.fixture
async def apis(tmp_path):
    lab = Lab(tmp_path, "memory", market=True, progress=False, durable=False)
    async with lab:
        peers = await lab.start(2)
        servers = [RestServer(peer.market) for peer in peers]
        for server in servers:
            await server.start()
        async with aiohttp.ClientSession() as http:
            yield http, servers
        for server in servers:
            await server.stop()


def _auth(server: RestServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def _readings_csv() -> bytes:
    out = io.StringIO()
    write_csv(synthetic_household(seed=3, days=2, location="2628"), out)
    return out.getvalue().encode()


async def test_upload_list_bid_buy_and_download_through_the_api(apis):
    http, (seller, buyer) = apis
    s, b = seller.url, buyer.url

    async with http.post(f"{s}/data/readings", data=_readings_csv(), headers=_auth(seller)) as r:
        assert r.status == 201, await r.text()
        readings_id = (await r.json())["readings_id"]
    ask = {"readings_id": readings_id, "price": 15, "start": "2026-01-01", "end": "2026-01-02",
           "resolution": "15min", "location": "2628", "household_type": "family"}
    async with http.put(f"{s}/market/asks", json=ask, headers=_auth(seller)) as r:
        assert r.status == 201, await r.text()
        listing = (await r.json())["listing"]
    assert listing["descriptor"]["n_readings"] == 96 and listing["status"] == "live"

    await buyer.service.market.book.wait_for_listing(listing["listing_id"])
    async with http.get(f"{b}/market/asks", params={"area": "26", "max_price": "20"}, headers=_auth(buyer)) as r:
        assert [a["listing_id"] for a in (await r.json())["asks"]] == [listing["listing_id"]]
    async with http.get(f"{b}/market/asks", params={"max_price": "14"}, headers=_auth(buyer)) as r:
        assert (await r.json())["asks"] == []

    async with http.put(f"{b}/market/bids", json={"kind": "electricity", "max_price": 20}, headers=_auth(buyer)) as r:
        assert r.status == 201
        standing = (await r.json())["bid"]
    async with http.get(f"{b}/market/bids", headers=_auth(buyer)) as r:
        assert [x["request_id"] for x in (await r.json())["bids"]] == [standing["request_id"]]

    async with http.put(f"{b}/market/bids", json={"listing_id": listing["listing_id"]}, headers=_auth(buyer)) as r:
        assert r.status == 201, await r.text()
        trade = (await r.json())["trade"]
    assert trade["amount"] == 15

    async with http.get(f"{b}/wallets", headers=_auth(buyer)) as r:
        assert (await r.json())["wallets"]["EDX"]["available"] == 1000 - 15
    async with http.get(f"{s}/market/transactions", headers=_auth(seller)) as r:
        [tx] = (await r.json())["transactions"]
        assert tx["role"] == "seller" and tx["amount"] == 15 and tx["settled"]
    async with http.get(f"{b}/data/purchases", headers=_auth(buyer)) as r:
        assert [p["listing_id"] for p in (await r.json())["purchases"]] == [listing["listing_id"]]
    async with http.get(f"{b}/data/purchases/{listing['listing_id']}", headers=_auth(buyer)) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        frame = load_dataset_bytes(await r.read())
    assert len(frame) == 96

    async with http.delete(f"{s}/market/asks/{listing['listing_id']}", headers=_auth(seller)) as r:
        assert r.status == 200
    async with http.post(f"{b}/data/buy", json={"listing_id": listing["listing_id"]}, headers=_auth(buyer)) as r:
        assert r.status in (409, 502)  # withdrawn: refused here, or by the seller if the news is late
        assert (await r.json())["error"]["code"] in ("listing_unavailable", "rejected_by_counterparty")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("put", "/market/asks", b"not json", 400, "bad_json"),
        # Python's json kept the last of a name given twice, and read NaN and Infinity as floats.
        ("put", "/market/bids", b'{"max_price": 5, "max_price": 500}', 400, "bad_json"),
        ("post", "/data/buy", b'{"listing_id": NaN}', 400, "bad_json"),
        ("put", "/market/bids", b'{"max_price": -Infinity}', 400, "bad_json"),
        ("put", "/market/asks", {"price": 1}, 400, "bad_request"),
        ("put", "/market/asks", {"readings_id": "nope", "price": 1}, 404, "readings_not_found"),
        ("put", "/market/bids", {"listing_id": "00" * 32}, 404, "listing_not_found"),
        ("put", "/market/bids", {"kind": "electricity"}, 400, "bad_request"),
        ("put", "/market/bids", {"max_price": "ten"}, 400, "bad_request"),
        ("put", "/market/bids", {"max_price": 5, "colour": "red"}, 400, "bad_request"),
        ("put", "/market/bids", [1, 2], 400, "bad_request"),
        ("post", "/data/buy", {}, 400, "bad_request"),
        ("post", "/data/readings", b"", 400, "bad_request"),
        ("post", "/data/readings", b"a,b\n1,2\n", 400, "bad_readings"),
        ("get", "/market/asks?start=yesterday-ish", None, 400, "bad_request"),
        ("get", "/market/asks?max_price=-3", None, 400, "bad_request"),
        ("get", "/data/purchases/" + "00" * 32, None, 404, "purchase_not_found"),
        ("get", "/no/such/endpoint", None, 404, "not_found"),
        ("delete", "/market/bids", None, 405, "method_not_allowed"),
    ],
)
async def test_bad_requests_get_clear_4xx_errors(apis, method, path, body, status, code):
    http, (server, _) = apis
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    async with http.request(method, server.url + path, headers=_auth(server), **kwargs) as r:
        assert r.status == status, await r.text()
        error = (await r.json())["error"]
        assert error["code"] == code and error["message"]


@pytest.mark.parametrize("body", [{"max_price": 10**20}, {"max_price": 5, "expires_in": -(2**63) - 1}])
async def test_an_integer_no_block_can_hold_is_refused_by_its_field(apis, body):
    http, (_, buyer) = apis
    async with http.put(f"{buyer.url}/market/bids", json=body, headers=_auth(buyer)) as r:
        assert r.status == 400
        name = list(body)[-1]
        assert (await r.json())["error"]["message"].startswith(f"{name} must be an integer that fits 64 bits")


async def test_the_api_needs_the_token_but_its_description_does_not(apis):
    http, (server, _) = apis
    async with http.get(f"{server.url}/wallets") as r:
        assert r.status == 401
    async with http.get(f"{server.url}/wallets", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
    # Bytes that are no UTF-8 (aiohttp reads them as lone surrogates) were a 500 internal_error.
    status, body = await _raw(server, b"GET /wallets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
                                      b"Connection: close\r\n\r\n")
    assert status.endswith(b" 401 Unauthorized") and json.loads(body)["error"]["code"] == "unauthorized"
    async with http.get(f"{server.url}/openapi.json") as r:
        spec = await r.json()
    assert spec["openapi"].startswith("3.") and {"/market/asks", "/market/bids", "/wallets"} <= set(spec["paths"])
    assert server.url.startswith("http://127.0.0.1:")


async def test_an_overspend_through_the_api_is_payment_required(apis):
    http, (seller, buyer) = apis
    from tests.support.market import DESCRIPTOR, readings_bytes

    listing = seller.service.market.sell(readings_bytes(40), DESCRIPTOR, 5000)
    await buyer.service.market.book.wait_for_listing(listing.listing_id)
    async with http.post(f"{buyer.url}/data/buy", json={"listing_id": listing.listing_id}, headers=_auth(buyer)) as r:
        assert r.status == 402 and (await r.json())["error"]["code"] == "insufficient_funds"


def test_the_api_refuses_to_bind_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        RestServer(None, host="0.0.0.0")  # type: ignore[arg-type]


async def test_two_concurrent_buys_of_one_listing_are_one_purchase_and_a_409(apis):
    import asyncio

    http, (seller, buyer) = apis
    async with http.post(f"{seller.url}/data/readings", data=_readings_csv(), headers=_auth(seller)) as r:
        readings_id = (await r.json())["readings_id"]
    ask = {"readings_id": readings_id, "price": 40, "start": "2026-01-01", "end": "2026-01-02",
           "resolution": "15min", "location": "2628", "household_type": "family"}
    async with http.put(f"{seller.url}/market/asks", json=ask, headers=_auth(seller)) as r:
        listing_id = (await r.json())["listing"]["listing_id"]
    await buyer.service.market.book.wait_for_listing(listing_id)

    async def buy() -> tuple[int, dict]:
        async with http.post(f"{buyer.url}/data/buy", json={"listing_id": listing_id}, headers=_auth(buyer)) as r:
            return r.status, await r.json()

    answers = await asyncio.gather(buy(), buy())
    assert sorted(status for status, _ in answers) == [201, 409]
    assert [body["error"]["code"] for status, body in answers if status == 409] == ["purchase_conflict"]
    async with http.get(f"{buyer.url}/wallets", headers=_auth(buyer)) as r:
        assert (await r.json())["wallets"]["EDX"]["available"] == 1000 - 40  # charged once
    async with http.post(f"{buyer.url}/data/buy", json={"listing_id": listing_id, "again": "yes"},
                         headers=_auth(buyer)) as r:
        assert r.status == 400 and "again must be true or false" in (await r.json())["error"]["message"]
    async with http.post(f"{buyer.url}/data/buy", json={"listing_id": listing_id, "again": True},
                         headers=_auth(buyer)) as r:
        assert r.status == 201  # asked for: a second purchase
    async with http.get(f"{buyer.url}/wallets", headers=_auth(buyer)) as r:
        assert (await r.json())["wallets"]["EDX"]["available"] == 1000 - 80


async def test_a_csv_of_several_meters_is_uploaded_one_meter_at_a_time(apis):
    # The error said "choose one with meter=", read_csv's keyword, and the API had no way to choose.
    http, (seller, _) = apis
    two = (b"timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,a,1\n2026-01-01T00:00:00Z,b,2\n"
           b"2026-01-01T00:15:00Z,a,1.5\n2026-01-01T00:15:00Z,b,2.5\n")
    url = f"{seller.url}/data/readings"
    async with http.post(url, data=two, headers=_auth(seller)) as r:
        error = (await r.json())["error"]
        assert r.status == 400 and error["message"] == "the CSV: holds 2 meters (a, b); choose one with ?meter=ID"
    async with http.post(url, params={"meter": "c"}, data=two, headers=_auth(seller)) as r:
        assert r.status == 400 and "no meter 'c' (?meter=ID); the file holds a, b" in (await r.json())["error"]["message"]
    async with http.post(url, params={"meter": "b"}, data=two, headers=_auth(seller)) as r:
        assert r.status == 201 and (await r.json())["rows"] == 2
    async with http.post(url, params={"device": "b"}, data=two, headers=_auth(seller)) as r:
        assert r.status == 400 and "unknown parameters: device" in (await r.json())["error"]["message"]


async def test_an_order_book_status_other_than_live_or_all_is_refused(apis):
    # "withdrawn" (or "ALL") was taken for "live": the client saw live listings as what it asked for.
    http, (seller, _) = apis
    for status in ("withdrawn", "ALL", ""):
        async with http.get(f"{seller.url}/market/asks", params={"status": status}, headers=_auth(seller)) as r:
            assert r.status == 400 and "status is live (the default) or all" in (await r.json())["error"]["message"]
    for status in ("live", "all"):
        async with http.get(f"{seller.url}/market/asks", params={"status": status}, headers=_auth(seller)) as r:
            assert r.status == 200 and (await r.json())["asks"] == []


async def test_uploaded_readings_are_bounded_and_can_be_forgotten(apis, monkeypatch):
    # Every upload stayed in memory for the peer's life, and nothing could remove one.
    http, (seller, _) = apis
    monkeypatch.setattr(rest, "MAX_HELD_ROWS", 3)
    csv = b"timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n2026-01-01T00:15:00Z,1.5\n"
    url = f"{seller.url}/data/readings"
    async with http.post(url, data=csv, headers=_auth(seller)) as r:
        assert r.status == 201
        first = (await r.json())["readings_id"]
    async with http.post(url, data=csv, headers=_auth(seller)) as r:
        error = (await r.json())["error"]
        assert r.status == 507 and error["code"] == "too_many_readings" and "holds 2 uploaded rows" in error["message"]
    async with http.delete(f"{url}/{first}", headers=_auth(seller)) as r:
        assert r.status == 200 and (await r.json()) == {"deleted": first}
    async with http.delete(f"{url}/{first}", headers=_auth(seller)) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "readings_not_found"
    async with http.post(url, data=csv, headers=_auth(seller)) as r:
        assert r.status == 201
    async with http.get(url, headers=_auth(seller)) as r:
        assert [held["rows"] for held in (await r.json())["readings"]] == [2]


async def test_a_wait_that_runs_out_is_a_504_not_a_storage_failure(apis, monkeypatch):
    # asyncio's bare TimeoutError is an OSError: the middleware answered 507 "cannot use the file: ".
    import asyncio

    http, (server, _) = apis

    async def hang(*args, **kwargs):
        await asyncio.wait_for(asyncio.get_running_loop().create_future(), 0.01)

    monkeypatch.setattr(server.service, "buy", hang)
    async with http.post(f"{server.url}/data/buy", json={"listing_id": "00" * 32}, headers=_auth(server)) as r:
        assert r.status == 504, await r.text()
        assert (await r.json())["error"] == {"code": "counterparty_unreachable", "message": "no answer in time"}


async def test_a_bid_below_the_price_on_our_own_listing_is_a_400_not_a_504(apis):
    # The negotiation's proposal went to ourselves: 504 counterparty_unreachable, "no address known for peer".
    http, (seller, _) = apis
    from tests.support.market import DESCRIPTOR, readings_bytes

    listing = seller.service.market.sell(readings_bytes(40), DESCRIPTOR, 50)
    async with http.put(f"{seller.url}/market/bids", json={"listing_id": listing.listing_id, "price": 10},
                        headers=_auth(seller)) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"] == {"code": "bad_request", "message": "a peer cannot buy its own listing"}


@pytest.mark.parametrize("price", [0, -1, -(2**63)])
async def test_a_bid_of_no_positive_price_is_a_400_not_a_failed_negotiation(apis, price):
    # It was a 409 negotiation_failed ("the offer must be positive and at most max_price"), as if
    # the seller had been asked.
    http, (seller, _) = apis
    from tests.support.market import DESCRIPTOR, readings_bytes

    listing = seller.service.market.sell(readings_bytes(41), DESCRIPTOR, 50)
    async with http.put(f"{seller.url}/market/bids", json={"listing_id": listing.listing_id, "price": price},
                        headers=_auth(seller)) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"] == {"code": "bad_request",
                                             "message": f"price must be a positive integer, not {price}"}


@pytest.mark.parametrize("field", ["kind", "area", "household_type"])
async def test_a_standing_request_with_text_utf8_cannot_encode_is_a_400(apis, field):
    # JSON's "\udcff" is a lone surrogate: the request's CBOR failed and the API answered 500.
    http, (server, _) = apis
    async with http.put(f"{server.url}/market/bids", json={"max_price": 5, field: "\udcff"}, headers=_auth(server)) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["message"] == f"{field} must be text that UTF-8 can encode"


async def test_an_error_quotes_at_most_500_characters_of_what_was_sent(apis):
    # A 10 KB start date came back whole in the error message (a query string that long is
    # refused by aiohttp itself, before the API sees it).
    http, (server, _) = apis
    body = {"max_price": 5, "start": "x" * 10_000}
    async with http.put(f"{server.url}/market/bids", json=body, headers=_auth(server)) as r:
        assert r.status == 400, await r.text()
        message = (await r.json())["error"]["message"]
    assert len(message) == 500 and message.endswith("…") and "xxxx" in message


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json; charset=bogus"},  # aiohttp's text(): LookupError
    {"Content-Encoding": "gzip"},  # a body that is no gzip: aiohttp's RequestPayloadError
])
async def test_a_body_in_an_unknown_charset_or_a_false_encoding_is_a_400(apis, headers):
    # Both were 500 internal_error, on every route with a body.
    _, (server, _) = apis
    for method, path, body in (("PUT", "/market/bids", b'{"max_price": 5}'), ("POST", "/data/readings", b"x")):
        # A connection of its own each: the server closes one whose body it could not read.
        async with aiohttp.ClientSession() as http, http.request(
            method, f"{server.url}{path}", data=body, headers={**_auth(server), **headers}
        ) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"]["code"] in ("bad_request", "bad_readings")


@pytest.mark.parametrize(("path", "query"), [
    ("/market/asks", "status=all&status=live"),
    ("/market/asks", "max_price=1&max_price=x"),
    ("/data/readings", "meter=a&meter=b"),
])
async def test_a_query_parameter_given_twice_is_a_400(apis, path, query):
    # The first value was taken and the second silently ignored.
    http, (server, _) = apis
    method = "POST" if path == "/data/readings" else "GET"
    async with http.request(method, f"{server.url}{path}?{query}", data=_readings_csv() if method == "POST" else None,
                            headers=_auth(server)) as r:
        assert r.status == 400, await r.text()
        assert "given more than once" in (await r.json())["error"]["message"]


async def _raw(server: RestServer, request: bytes) -> tuple[bytes, bytes]:
    """Send bytes no HTTP client would; the answer's status line and body."""
    import asyncio

    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the server closes after an unreadable request
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


@pytest.mark.parametrize(("request_bytes", "code"), [
    (b"GET /market/asks?area=" + b"2" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "request_too_long"),
    (b"GET /market/asks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"t" * 9000 + b"\r\n\r\n", "request_too_long"),
    (b"GET /market/asks HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
     "bad_request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", "bad_request"),  # TLS on the HTTP port
], ids=["long URL", "long header", "too many headers", "TLS"])
async def test_a_request_aiohttp_cannot_parse_gets_a_json_error(apis, request_bytes: bytes, code: str):
    # Before: aiohttp's plain-text 400 ("Got more than 8190 bytes when reading: b'2222...'"), the
    # one error of the API that was not JSON, and a traceback in the peer's log for each.
    _, (server, _) = apis
    status, body = await _raw(server, request_bytes)
    assert status.startswith(b"HTTP/1.") and status.endswith(b" 400 Bad Request")
    error = json.loads(body)["error"]
    assert error["code"] == code
    if code == "request_too_long":
        assert error["message"] == "the request line or a header is longer than 8190 bytes"
    else:
        assert error["message"].startswith("not an HTTP request this API reads: ")
    # The server still serves.
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/openapi.json") as r:
        assert r.status == 200


@pytest.mark.parametrize(("options", "message"), [
    ({"port": "80"}, "port is a TCP port from 0 \\(any free one\\) to 65535, not '80'"),  # bound port 80
    ({"port": True}, "port is a TCP port"),  # bound port 1
    ({"port": -1}, "port is a TCP port"),  # an OverflowError from bind()
    ({"token": " " * 20}, "token is None \\(a random one\\) or at least 16 printable ASCII characters"),
    ({"token": "é" * 20}, "without white space, not 20 characters"),  # no client could send it
    ({"token": "short"}, "at least 16"),
    ({"token": 5}, "not int"),
])
async def test_a_server_option_of_the_wrong_kind_is_refused(tmp_path, options, message):
    async with Lab(tmp_path, "memory", market=True, progress=False, durable=False) as lab:
        (peer,) = await lab.start(1)
        with pytest.raises(ConfigurationError, match=message) as refused:
            RestServer(peer.market, **options)
        assert "éééé" not in str(refused.value)  # a token is a secret: never in a message
    with pytest.raises(ConfigurationError, match="serves a MarketService \\(peer.market\\), not NoneType"):
        RestServer(None)  # type: ignore[arg-type]  # every request was a 500


async def test_a_server_started_twice_is_refused_and_stops_once(apis):
    # The second start replaced the first runner, which then served on after stop().
    http, (server, _) = apis
    url = server.url
    with pytest.raises(NetworkError, match=f"the REST API is served already at {url}"):
        await server.start()
    async with http.get(f"{url}/openapi.json") as r:
        assert r.status == 200
