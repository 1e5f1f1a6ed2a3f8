"""A peer's local REST API (aiohttp, loopback only, bearer token): the market and the data.

The market endpoints follow the Tribler market API the original prototype used
(PUT /market/asks, PUT /market/bids, GET /market/asks, GET /market/bids,
GET /market/transactions, GET /wallets); the data endpoints upload readings, buy, list
purchases and download a decrypted data set. ``GET /openapi.json`` describes them all.
Every error is JSON ``{"error": {"code": ..., "message": ...}}`` with a 4xx status for
bad requests and 502/504 when the counterparty refused or did not answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestPayloadError

from enerdatx.errors import (
    ConfigurationError,
    DataVerificationError,
    EncodingError,
    FraudDetectedError,
    InsufficientFundsError,
    ListingNotFoundError,
    ListingUnavailableError,
    MarketError,
    MeterChoiceError,
    MeterDataError,
    NegotiationError,
    NetworkError,
    PurchaseConflictError,
    StorageError,
    SubscriptionEndedError,
    SubscriptionNotFoundError,
    TransactionRejectedError,
    TransactionTimeoutError,
    typed_error,
)
from enerdatx.market.formats import Listing
from enerdatx.market.orderbook import Query
from enerdatx.market.service import MarketService

__all__ = ["RestServer", "LOOPBACK", "openapi"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MIN_TOKEN_CHARS = 16  # a bearer token shorter than this is guessed; the default one has 32
MAX_UPLOAD = 64 * 1024 * 1024
# Uploaded readings stay in memory until deleted: a client that kept uploading grew the peer
# without bound. Four million rows are about four full-size uploads (a 64 MiB CSV holds about
# a million) and half a gigabyte as DataFrames.
MAX_HELD_ROWS = 4_000_000

_QUERY_FIELDS = {"kind": str, "area": str, "start": str, "end": str, "resolution": str,
                 "household_type": str, "max_price": int}
_ASK_FIELDS = {"readings_id": str, "price": int, "start": str, "end": str, "resolution": str,
               "location": str, "household_type": str, "kind": str, "expires_in": int}
_BID_FIELDS = {**_QUERY_FIELDS, "listing_id": str, "price": int, "expires_in": int}
_BUY_FIELDS = {"listing_id": str, "amount": int, "again": bool}  # again: buy a listing bought already

# (error class, HTTP status, code); the first match wins, so subclasses come first.
_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (ListingNotFoundError, 404, "listing_not_found"),
    (SubscriptionNotFoundError, 404, "subscription_not_found"),
    (SubscriptionEndedError, 409, "subscription_ended"),
    (ListingUnavailableError, 409, "listing_unavailable"),
    (InsufficientFundsError, 402, "insufficient_funds"),
    (PurchaseConflictError, 409, "purchase_conflict"),
    (NegotiationError, 409, "negotiation_failed"),
    (DataVerificationError, 502, "data_verification_failed"),
    (TransactionRejectedError, 502, "rejected_by_counterparty"),
    (FraudDetectedError, 409, "counterparty_is_a_forker"),
    (TransactionTimeoutError, 504, "counterparty_timeout"),
    (NetworkError, 504, "counterparty_unreachable"),
    (MeterDataError, 400, "bad_readings"),
    (EncodingError, 400, "bad_request"),
    (MarketError, 400, "bad_request"),
)


class HTTPError(Exception):
    """An error answer with a status, a machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _listing_json(listing: Listing, status: str) -> dict[str, Any]:
    return {
        "listing_id": listing.listing_id, "seller": listing.seller.hex(), "price": listing.price,
        "cid": listing.cid, "commitment": listing.commitment.hex(), "created": listing.created,
        "expires": listing.expires, "descriptor": listing.descriptor, "status": status,
    }


def _fields(body: Any, allowed: dict[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a JSON object's fields against names and types; 400 on anything unexpected."""
    if not isinstance(body, dict):
        raise HTTPError(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise HTTPError(400, "bad_request", f"unknown fields: {', '.join(unknown)}")
    missing = [name for name in required if body.get(name) is None]
    if missing:
        raise HTTPError(400, "bad_request", f"missing fields: {', '.join(missing)}")
    for name, value in body.items():
        kind = allowed[name]
        if value is not None and (type(value) is not kind):
            expected = {int: "an integer", bool: "true or false"}.get(kind, "a string")
            raise HTTPError(400, "bad_request", f"{name} must be {expected}")
        if type(value) is int and not -(2**63) <= value < 2**63:
            # Every integer is signed into a block as 64 bits: 10**20 was refused as "integer
            # 100000000000000000000 does not fit 64 bits", naming no field.
            raise HTTPError(400, "bad_request", f"{name} must be an integer that fits 64 bits, not {value}")
    return {k: v for k, v in body.items() if v is not None}


class _Connection(web.RequestHandler):
    """aiohttp's handler of one connection, answering a request it cannot parse as the API answers.

    A request line or a header over aiohttp's 8190 bytes, too many headers, or bytes that are no
    HTTP never reach a middleware: aiohttp answers them from ``handle_error``, in plain text
    (where every other error of the API is JSON), and logs each with a traceback. It has no
    setting or hook for that answer (aio-libs/aiohttp#3287), so this subclass gives it.
    aiohttp tells neither a long URL from a long header nor either from a long header name, so
    all are 400 ``request_too_long``.
    """

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)  # a bug, or an answer cut short
        self.logger.debug("unreadable request from %s: %s", request.remote, exc)  # a client's, no bug here
        if isinstance(exc, LineTooLong):
            response = _error(400, "request_too_long", f"the request line or a header is longer than "
                                                       f"{max(self.max_line_size, self.max_field_size)} bytes")
        else:
            reason = str(exc.message).strip().splitlines()[0] if str(exc.message).strip() else "malformed"
            response = _error(400, "bad_request", f"not an HTTP request this API reads: {reason}")
        response.force_close()  # the rest of the connection cannot be parsed either
        return response


class RestServer:
    """Serves one MarketService's REST API on a loopback address."""

    def __init__(self, service: MarketService, *, token: str | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the REST API binds to loopback only ({', '.join(LOOPBACK)}), not {host!r}")
        # Each was taken: port "80" or True bound port 80 or 1, -1 failed in bind() with an
        # OverflowError; a token " " guarded the API with a blank, and one no HTTP header can
        # carry ("é") locked every client out; None served every request a 500.
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port is a TCP port from 0 (any free one) to 65535, not {port!r}")
        if token is not None and not (isinstance(token, str) and len(token) >= MIN_TOKEN_CHARS
                                      and token.isascii() and token.isprintable() and not any(c.isspace() for c in token)):
            shown = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__  # no secret in a message
            raise ConfigurationError(f"token is None (a random one) or at least {MIN_TOKEN_CHARS} printable ASCII "
                                     f"characters without white space, not {shown}")
        if not isinstance(service, MarketService):
            raise ConfigurationError(f"the REST API serves a MarketService (peer.market), not {type(service).__name__}")
        self.service = service
        self.token = token or secrets.token_urlsafe(24)
        self.host, self.port = host, port
        self.readings: dict[str, pd.DataFrame] = {}
        self.app = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_UPLOAD)
        self.app.add_routes([
            web.get("/openapi.json", self.get_openapi),
            web.put("/market/asks", self.put_ask),
            web.get("/market/asks", self.get_asks),
            web.delete("/market/asks/{listing_id}", self.delete_ask),
            web.put("/market/bids", self.put_bid),
            web.get("/market/bids", self.get_bids),
            web.get("/market/transactions", self.get_transactions),
            web.get("/wallets", self.get_wallets),
            web.post("/data/readings", self.post_readings),
            web.get("/data/readings", self.get_readings),
            web.delete("/data/readings/{readings_id}", self.delete_readings),
            web.post("/data/buy", self.post_buy),
            web.get("/data/purchases", self.get_purchases),
            web.get("/data/purchases/{listing_id}", self.get_purchase),
        ])
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    async def start(self) -> str:
        """Start serving; returns the base URL. NetworkError while it serves already."""
        if self._runner is not None:  # a second runner replaced the first, which served on unstoppable
            raise NetworkError(f"the REST API is served already at {self.url}: stop() it first")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None  # set up above
        loop = asyncio.get_running_loop()
        # Listened on here rather than through a web.TCPSite, which can only make aiohttp's own
        # connection handler, not _Connection.
        # access_log=None logs no access, as for the runner (aiohttp's annotation leaves None out).
        self._listener = await loop.create_server(
            lambda: _Connection(server, loop=loop, access_log=None),  # type: ignore[arg-type]
            self.host, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self.url

    @property
    def addresses(self) -> list[Any]:
        """The socket addresses served on, as ``getsockname()`` gives them (none when stopped)."""
        return [sock.getsockname() for sock in self._listener.sockets] if self._listener is not None else []

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8085."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving."""
        if self._listener is not None:
            self._listener.close()  # no new connections; the runner's cleanup closes the open ones
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    # --- middlewares -----------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HTTPError as exc:
            return _error(exc.status, exc.code, exc.message)
        except web.HTTPException as exc:  # aiohttp's own: 404 route, 405 method, 413 too large
            return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
        except RequestPayloadError as exc:  # a Content-Encoding the body is not in (a 500)
            return _error(400, "bad_request", f"the body cannot be read: {str(exc).strip()}")
        except Exception as exc:  # noqa: BLE001 - a failure is a JSON answer, never a bare 500
            error = typed_error(exc)
            if error is None:
                logger.exception("REST %s %s failed", request.method, request.path)
                return _error(500, "internal_error", f"{type(exc).__name__} (a bug; see the peer's log)")
            for kind, status, code in _ERRORS:
                if isinstance(error, kind):
                    return _error(status, code, str(error))
            if isinstance(error, StorageError):  # disk full, read-only or corrupt database
                return _error(507, "storage_failed", str(error))
            return _error(400, "bad_request", str(error))

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/openapi.json":
            given = request.headers.get("Authorization", "")
            # aiohttp reads a header's bytes that are no UTF-8 as lone surrogates: a plain encode()
            # failed, and any client without the token was answered a 500 (with a traceback logged).
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), f"Bearer {self.token}".encode()):
                raise HTTPError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
        return await handler(request)

    # --- market ----------------------------------------------------------------------

    async def get_openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3 description of this API."""
        return web.json_response(openapi())

    async def put_ask(self, request: web.Request) -> web.Response:
        """Cut a data set from uploaded readings and list it."""
        from enerdatx.meter import cut_dataset

        body = _fields(await read_json(request), _ASK_FIELDS, ("readings_id", "price"))
        readings = self.readings.get(body.pop("readings_id"))
        if readings is None:
            raise HTTPError(404, "readings_not_found", "no uploaded readings with that id")
        price, expires_in = body.pop("price"), body.pop("expires_in", None)
        _within(readings, body)
        dataset = cut_dataset(readings, **body)
        listing = self.service.sell(dataset, price, expires_in=expires_in)
        return web.json_response({"listing": self._listing(listing)}, status=201)

    async def get_asks(self, request: web.Request) -> web.Response:
        """The order book, optionally filtered (?kind=&area=&start=&end=&resolution=&max_price=&status=all)."""
        params = _query(request)
        status = params.pop("status", "live")
        if status not in ("live", "all"):  # "withdrawn" or "ALL" was taken for "live"
            raise HTTPError(400, "bad_request", f"status is live (the default) or all, not {status[:64]!r}")
        everything = status == "all"
        _query_int(params, "max_price")
        query = Query(**_fields(params, {**_QUERY_FIELDS, "max_price": int}))
        listings = self.service.market.book.search(query, include_unavailable=everything)
        return web.json_response({"asks": [self._listing(x) for x in listings]})

    async def delete_ask(self, request: web.Request) -> web.Response:
        """Withdraw one of our listings."""
        self.service.market.withdraw(request.match_info["listing_id"])
        return web.json_response({"withdrawn": request.match_info["listing_id"]})

    async def put_bid(self, request: web.Request) -> web.Response:
        """Bid on a listing (``listing_id``, optional ``price``) or post a standing request."""
        body = _fields(await read_json(request), _BID_FIELDS)
        if "listing_id" in body:
            listing_id, price = body.pop("listing_id"), body.pop("price", None)
            if body:
                raise HTTPError(400, "bad_request", "a bid on a listing has only listing_id and price")
            if price is not None and price < 1:  # a 409 negotiation_failed, as if the seller had been asked
                raise HTTPError(400, "bad_request", f"price must be a positive integer, not {price}")
            listing = self.service.market.book.get(listing_id)
            if price is None or price >= listing.price:
                trade = await self.service.buy(listing_id)
            else:
                trade = await self.service.negotiate_and_buy(listing_id, offer=price, max_price=price)
            return web.json_response({"trade": _trade_json(trade)}, status=201)
        if "max_price" not in body:
            raise HTTPError(400, "bad_request", "a bid names a listing_id, or a standing request its max_price")
        if "price" in body:
            raise HTTPError(400, "bad_request", "a standing request has max_price, not price")
        expires_in = body.pop("expires_in", None)
        request_ = self.service.post_request(Query(**body), expires_in=expires_in)
        return web.json_response({"bid": _request_json(request_)}, status=201)

    async def get_bids(self, request: web.Request) -> web.Response:
        """Every live standing request this peer knows (its own and relayed ones)."""
        return web.json_response({"bids": [_request_json(r) for r in self.service.live_requests()]})

    async def get_transactions(self, request: web.Request) -> web.Response:
        """Every payment on our chain, as buyer or seller."""
        return web.json_response({"transactions": self.service.market.trades()})

    async def get_wallets(self, request: web.Request) -> web.Response:
        """Our token balance, derived from our chain."""
        balance = self.service.market.balance()
        return web.json_response({"wallets": {"EDX": {
            "public_key": self.service.public_key.hex(), "available": balance.available, "grant": balance.grant,
            "earned": balance.earned, "spent": balance.spent,
        }}})

    # --- data ------------------------------------------------------------------------

    async def post_readings(self, request: web.Request) -> web.Response:
        """Upload meter readings as CSV (any format enerdatx.meter.read_csv knows); ``?meter=ID``
        chooses one meter of a CSV that holds several."""
        from enerdatx.meter import read_csv
        from enerdatx.meter.schema import meter_choice

        params = _query(request)
        meter = params.pop("meter", None)
        if params:
            raise HTTPError(400, "bad_request", f"unknown parameters: {', '.join(sorted(params))} (only meter)")
        data = await request.read()
        if not data:
            raise HTTPError(400, "bad_request", "the body must be a CSV file of readings")
        try:
            readings = read_csv(data, meter=meter)
        except MeterChoiceError as exc:  # its message names read_csv's keyword, which no HTTP client has
            raise HTTPError(400, "bad_readings", f"the CSV: {meter_choice(exc, '?meter=ID')}") from None
        held = sum(len(kept) for kept in self.readings.values())
        if held + len(readings) > MAX_HELD_ROWS:
            raise HTTPError(507, "too_many_readings",
                            f"the peer holds {held:,} uploaded rows and takes at most {MAX_HELD_ROWS:,}: "
                            "DELETE /data/readings/{id} what is listed already")
        readings_id = secrets.token_hex(8)
        self.readings[readings_id] = readings
        return web.json_response({"readings_id": readings_id, **_readings_json(readings)}, status=201)

    async def delete_readings(self, request: web.Request) -> web.Response:
        """Forget uploaded readings (the data sets cut from them and listed stay listed)."""
        readings_id = request.match_info["readings_id"]
        if self.readings.pop(readings_id, None) is None:
            raise HTTPError(404, "readings_not_found", "no uploaded readings with that id")
        return web.json_response({"deleted": readings_id})

    async def get_readings(self, request: web.Request) -> web.Response:
        """The uploaded readings (not their values)."""
        return web.json_response({"readings": [{"readings_id": k, **_readings_json(v)} for k, v in self.readings.items()]})

    async def post_buy(self, request: web.Request) -> web.Response:
        """Buy a listing at its price (or ``amount``), fetch, decrypt and verify it."""
        body = _fields(await read_json(request), _BUY_FIELDS, ("listing_id",))
        # An HTTP client asks about listings it saw: an unknown one is a 404 now, not after a wait.
        trade = await self.service.buy(body["listing_id"], amount=body.get("amount"), again=body.get("again", False),
                                       timeout=0)
        return web.json_response({"trade": _trade_json(trade)}, status=201)

    async def get_purchases(self, request: web.Request) -> web.Response:
        """Every data set we bought and verified."""
        return web.json_response({"purchases": [
            {"listing_id": p.listing_id, "seller": p.seller.hex(), "cid": p.cid, "amount": p.amount,
             "bought_at": p.bought_at} for p in self.service.market.purchases()
        ]})

    async def get_purchase(self, request: web.Request) -> web.Response:
        """The decrypted data set we bought (enerdatx-readings CSV)."""
        listing_id = request.match_info["listing_id"]
        if self.service.market.keyring.purchase(listing_id) is None:
            raise HTTPError(404, "purchase_not_found", "we have not bought that listing")
        data = self.service.market.purchased_data(listing_id)
        return web.Response(body=data, content_type="text/csv")

    def _listing(self, listing: Listing) -> dict[str, Any]:
        return _listing_json(listing, self.service.market.book.status(listing))


def _within(readings: pd.DataFrame, body: dict[str, Any]) -> None:
    """An ask sells the period of its readings: a start or end far outside it would only cut
    millions of empty intervals (a year 1011 start took 12 s of CPU)."""
    from enerdatx.errors import MeterDataError
    from enerdatx.meter.resample import utc_timestamp

    first, last = readings.index.min() - pd.Timedelta("1D"), readings.index.max() + pd.Timedelta("1D")
    for name in ("start", "end"):
        if name not in body:
            continue
        try:
            when = utc_timestamp(body[name])
        except MeterDataError as exc:  # not a time, or one no reading can have
            raise HTTPError(400, "bad_request", f"{name}: {exc}") from None
        if not first <= when <= last:
            raise HTTPError(400, "bad_request", f"{name} lies outside the uploaded readings")


async def request_text(request: web.Request) -> str:
    """The body as text in the charset its Content-Type names (UTF-8 by default); a charset
    Python does not know is a 400 (aiohttp's own ``text()`` raised LookupError: a 500)."""
    data = await request.read()
    charset = request.charset or "utf-8"
    try:
        return data.decode(charset)
    except LookupError:
        raise HTTPError(400, "bad_request", f"unknown charset {charset[:64]!r} in Content-Type") from None


class _AmbiguousJSONError(ValueError):
    """JSON that Python reads, but not as one meaning: a name given twice, NaN or Infinity."""


def _one_value_per_name(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of {"listing_id": "a", "listing_id": "b"}; a proxy or another
    # client may read the first (RFC 8259, 4). Query parameters given twice are refused likewise.
    body = dict(pairs)
    if len(body) < len(pairs):
        names = [name for name, _ in pairs]
        twice = sorted({name for name in names if names.count(name) > 1})
        raise _AmbiguousJSONError(f"names given more than once: {', '.join(twice)[:200]}")
    return body


def _no_constant(name: str) -> Any:
    raise _AmbiguousJSONError(f"{name} is not a JSON number")  # Python's json reads it as a float


async def read_json(request: web.Request) -> Any:
    """The request's body as JSON, strictly (names once each, no NaN or Infinity); HTTPError 400 otherwise."""
    try:
        return json.loads(await request_text(request), object_pairs_hook=_one_value_per_name,
                          parse_constant=_no_constant)
    except _AmbiguousJSONError as exc:
        raise HTTPError(400, "bad_json", f"the body is ambiguous JSON: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "bad_json", "the body is not JSON") from None
    except RecursionError:
        raise HTTPError(400, "bad_json", "the body is nested too deeply") from None
    except ValueError:  # an integer beyond Python's int-string conversion limit (4,300 digits)
        raise HTTPError(400, "bad_json", "the body holds a number with too many digits") from None


def _query(request: web.Request) -> dict[str, str]:
    """The query string as one value per name; a name given twice is a 400 (``dict()`` kept the
    first: ``?status=all&status=live`` answered all, ``?max_price=1&max_price=x`` took 1)."""
    params = request.query
    repeated = sorted({name for name in params if len(params.getall(name)) > 1})
    if repeated:
        raise HTTPError(400, "bad_request", f"parameters given more than once: {', '.join(repeated)[:200]}")
    return dict(params)


def _query_int(params: dict[str, str], name: str) -> None:
    """An integer query parameter: ASCII digits, at most 2**63-1 (a 5,000-digit one is a 400, not int()'s error)."""
    if name in params:
        text = params[name]
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2**63):
            raise HTTPError(400, "bad_request", f"{name} must be a non-negative integer below 2**63")
        params[name] = int(text)  # type: ignore[assignment]


# Messages quote what was sent: a 10 KB `location` came back as a 10 KB message.
MAX_MESSAGE_CHARS = 500


def _error(status: int, code: str, message: str) -> web.Response:
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _trade_json(trade: Any) -> dict[str, Any]:
    return {"listing_id": trade.listing.listing_id, "seller": trade.listing.seller.hex(), "amount": trade.amount,
            "proposal": trade.proposal.hash.hex(), "agreement": trade.agreement.hash.hex(),
            "bytes": len(trade.plaintext)}


def _request_json(request: Any) -> dict[str, Any]:
    q = request.query
    return {"request_id": request.request_id, "buyer": request.buyer.hex(), "created": request.created,
            "expires": request.expires, "kind": q.kind, "area": q.area, "start": q.start, "end": q.end,
            "resolution": q.resolution, "household_type": q.household_type, "max_price": q.max_price}


def _readings_json(readings: pd.DataFrame) -> dict[str, Any]:
    return {"rows": len(readings), "first": readings.index.min().isoformat(), "last": readings.index.max().isoformat()}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 description of the REST API."""
    def schema(fields: dict[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
        types = {int: "integer", bool: "boolean"}
        props = {name: {"type": types.get(kind, "string")} for name, kind in fields.items()}
        return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}

    def body(fields: dict[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema(fields, required)}}}

    errors = {str(status): {"description": code} for _, status, code in reversed(_ERRORS)}
    errors["401"] = {"description": "unauthorized: missing or wrong bearer token"}

    def op(summary: str, ok: str = "200", request_body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        operation = {"summary": summary, "responses": {ok: {"description": "success"}, **errors}, **extra}
        if request_body:
            operation["requestBody"] = request_body
        return operation

    query_params = [{"name": n, "in": "query", "schema": {"type": "integer" if k is int else "string"}}
                    for n, k in {**_QUERY_FIELDS, "status": str}.items()]
    return {
        "openapi": "3.0.3",
        "info": {"title": "EnerDatX peer API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/market/asks": {
                "put": op("List a data set cut from uploaded readings", "201", body(_ASK_FIELDS, ("readings_id", "price"))),
                "get": op("The order book", parameters=query_params),
            },
            "/market/asks/{listing_id}": {"delete": op("Withdraw one of our listings", parameters=[
                {"name": "listing_id", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/market/bids": {
                "put": op("Bid on a listing (listing_id, price) or post a standing request (max_price)", "201",
                          body(_BID_FIELDS)),
                "get": op("Live standing requests"),
            },
            "/market/transactions": {"get": op("Payments on our chain")},
            "/wallets": {"get": op("Our balance, derived from our chain")},
            "/data/readings": {
                "post": op("Upload readings (CSV)", "201", {"required": True, "content": {"text/csv": {
                    "schema": {"type": "string"}}}}, parameters=[
                    {"name": "meter", "in": "query", "schema": {"type": "string"},
                     "description": "the meter to keep when the CSV holds several (London LCLid, meter_id)"}]),
                "get": op("Uploaded readings"),
            },
            "/data/readings/{readings_id}": {"delete": op("Forget uploaded readings", parameters=[
                {"name": "readings_id", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/data/buy": {"post": op("Buy, fetch, decrypt and verify a data set", "201",
                                     body(_BUY_FIELDS, ("listing_id",)))},
            "/data/purchases": {"get": op("Data sets we bought")},
            "/data/purchases/{listing_id}": {"get": op("A bought data set, decrypted (CSV)", parameters=[
                {"name": "listing_id", "in": "path", "required": True, "schema": {"type": "string"}}])},
        },
    }
