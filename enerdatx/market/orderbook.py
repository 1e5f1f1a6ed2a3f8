"""The order book: every listing a peer has learned, searchable by descriptor and as a DataFrame.

It is fed the blocks its ledger stores (listings, withdrawals, complaints, from any
chain); it never trusts anything that did not arrive as a validly signed block.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from enerdatx.conditions import Conditions
from enerdatx.crypto import is_public_key
from enerdatx.errors import EncodingError, ListingNotFoundError, MarketError, MeterDataError
from enerdatx.market.formats import COMPLAINT, LISTING, WITHDRAWAL, Listing, parse_listing, parse_withdrawal
from enerdatx.meter.resample import parse_resolution, utc_timestamp
from enerdatx.meter.schema import FIRST_DAY, LAST_DAY
from enerdatx.text import is_utf8

__all__ = ["Query", "OrderBook", "LIVE", "WITHDRAWN", "EXPIRED", "FRAUDULENT_SELLER", "check_listing_id"]

LIVE = "live"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
FRAUDULENT_SELLER = "fraudulent_seller"

FRAME_COLUMNS = [
    "listing_id", "seller", "price", "kind", "start", "end", "resolution_seconds", "n_readings",
    "location", "household_type", "cid", "created", "expires", "status", "seller_complaints",
]


def _timestamp(value: Any, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:  # "" and "NaT" are no time: every comparison with them is false, so such a query matched nothing
        return utc_timestamp(value)
    except MeterDataError as exc:
        raise MarketError(f"{name} {value!r} is not a date or time from {FIRST_DAY} to {LAST_DAY}") from exc


def _seconds(resolution: Any) -> int | None:
    """A query's resolution in seconds, as a data set's ``resolution_seconds`` can be: whole seconds
    dividing a day. "0s", "-15min" and 7 could match no data set, "1.5s" was cut to 1 (matching
    1-second data), and true was taken for 1."""
    if resolution is None:
        return None
    if isinstance(resolution, bool) or not isinstance(resolution, int | str):
        raise MarketError(f"resolution {resolution!r} is not a duration such as '15min' or a number of seconds")
    try:
        step = parse_resolution(pd.Timedelta(seconds=resolution) if isinstance(resolution, int) else resolution)
    except (MeterDataError, ValueError, OverflowError) as exc:  # 10**30 seconds: OutOfBoundsTimedelta
        raise MarketError(f"resolution {resolution!r} is not a duration of whole seconds dividing a day, "
                          "such as '15min' or 900") from exc
    return int(step.total_seconds())


@dataclass(frozen=True)
class Query:
    """What a buyer looks for; every field left None matches anything."""

    kind: str | None = None  # "electricity" also matches "electricity+gas" data sets
    start: str | None = None  # the data set must overlap [start, end)
    end: str | None = None
    resolution: str | int | None = None  # "15min" or seconds
    area: str | None = None  # a location prefix: "26" matches "2628"
    household_type: str | None = None
    max_price: int | None = None
    seller: bytes | None = None

    def __post_init__(self) -> None:
        lo, hi = _timestamp(self.start, "start"), _timestamp(self.end, "end")
        if lo is not None and hi is not None and hi <= lo:
            raise MarketError("the query's end must be after its start")
        self.resolution_seconds  # noqa: B018  # parsed (and checked) now
        if self.max_price is not None and (type(self.max_price) is not int or self.max_price < 0):
            raise MarketError("max_price is a non-negative integer")
        for name in ("kind", "area", "household_type"):  # kind=5 matched nothing, silently
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise MarketError(f"{name} is text, not {type(value).__name__}")
            if value is not None and not is_utf8(value):  # "\udcff" from JSON: a standing request's CBOR failed
                raise MarketError(f"{name} must be text that UTF-8 can encode")
        if self.seller is not None and not is_public_key(self.seller):
            raise MarketError("seller is a 32-byte public key")

    @functools.cached_property
    def resolution_seconds(self) -> int | None:
        """The resolution asked for, in seconds (parsed once: a query is matched against every listing)."""
        return _seconds(self.resolution)

    def matches(self, listing: Listing) -> bool:
        """True when ``listing``'s descriptor and price satisfy every given field."""
        d = listing.descriptor
        if self.max_price is not None and listing.price > self.max_price:
            return False
        if self.seller is not None and listing.seller != self.seller:
            return False
        if self.kind is not None and self.kind not in str(d.get("kind", "")).split("+") and self.kind != d.get("kind"):
            return False
        if self.resolution is not None and d.get("resolution_seconds") != self.resolution_seconds:
            return False
        if self.area is not None and not str(d.get("location", "")).upper().startswith(self.area.upper()):
            return False
        if self.household_type is not None and d.get("household_type") != self.household_type:
            return False
        return self._overlaps(d)

    def _overlaps(self, d: dict[str, Any]) -> bool:
        if self.start is None and self.end is None:
            return True
        try:
            lo, hi = _timestamp(d.get("start"), "start"), _timestamp(d.get("end"), "end")
        except MarketError:
            return False
        if lo is None or hi is None:
            return False
        q_lo, q_hi = _timestamp(self.start, "start"), _timestamp(self.end, "end")
        return (q_hi is None or lo < q_hi) and (q_lo is None or hi > q_lo)


_LISTING_ID = re.compile(r"[0-9a-f]{64}")


def check_listing_id(listing_id: object) -> str:
    """A listing id is the hex of its listing block's hash (64 lowercase hex digits); anything else
    can never be found, so it is refused at once instead of being waited for."""
    if not isinstance(listing_id, str) or _LISTING_ID.fullmatch(listing_id) is None:
        shown = repr(listing_id) if not isinstance(listing_id, str) else repr(listing_id[:70])
        raise ListingNotFoundError(f"not a listing id: {shown} (64 lowercase hex digits, a Listing's listing_id)")
    return listing_id


def _query(query: object, fields: dict[str, Any]) -> Query:
    """A Query, or one made of keyword fields: search("x") found nothing, silently, and an unknown
    field was a TypeError."""
    if query is not None and not isinstance(query, Query):
        raise MarketError(f"a search takes a Query (or its fields as keywords), not {type(query).__name__}")
    if query is not None and fields:
        raise MarketError("give a Query or its fields as keywords, not both")
    try:
        return query or Query(**fields)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(Query))
        raise MarketError(f"a Query has the fields {known}; not {', '.join(sorted(fields))}") from None


class OrderBook:
    """Listings learned from blocks, with their status (live, withdrawn, expired)."""

    def __init__(self, *, clock: Callable[[], int], is_fraudulent: Callable[[bytes], bool] = lambda pk: False) -> None:
        self._clock = clock
        self._is_fraudulent = is_fraudulent
        self._listings: dict[str, Listing] = {}
        self._withdrawn: dict[str, bytes] = {}  # listing id -> who withdrew it (only the seller counts)
        self._complaints: Counter[bytes] = Counter()
        self._seen_complaints: set[bytes] = set()
        self._conditions = Conditions()

    def __len__(self) -> int:
        return len(self._listings)

    def add_block(self, block: Any) -> None:
        """Learn from one stored block; blocks of other types and malformed ones are ignored."""
        try:
            if block.type == LISTING:
                listing = parse_listing(block)
                if listing.listing_id in self._listings:
                    return
                self._listings[listing.listing_id] = listing
            elif block.type == WITHDRAWAL:
                self._withdrawn.setdefault(parse_withdrawal(block).hex(), block.public_key)
            elif block.type == COMPLAINT:
                seller = block.transaction.get("seller")
                if block.hash not in self._seen_complaints and isinstance(seller, bytes):
                    self._seen_complaints.add(block.hash)
                    self._complaints[seller] += 1
            else:
                return
        except EncodingError:
            return
        self._wake()

    def add_blocks(self, blocks: Iterable[Any]) -> None:
        """Learn from many blocks (e.g. a whole store at start-up)."""
        for block in blocks:
            self.add_block(block)

    def refresh(self) -> None:
        """Re-check waiters after a change the book cannot see itself (a new fraud proof)."""
        self._wake()

    def get(self, listing_id: str) -> Listing:
        """The listing with that id; ListingNotFoundError if unknown."""
        check_listing_id(listing_id)  # outside the try: its own error is a KeyError too (None failed on [:16])
        try:
            return self._listings[listing_id]
        except KeyError:
            raise ListingNotFoundError(f"no listing {listing_id[:16]}… is known") from None

    def status(self, listing: Listing) -> str:
        """live, withdrawn, expired or fraudulent_seller."""
        if self._withdrawn.get(listing.listing_id) == listing.seller:
            return WITHDRAWN
        if listing.is_expired(self._clock()):
            return EXPIRED
        if self._is_fraudulent(listing.seller):
            return FRAUDULENT_SELLER
        return LIVE

    def complaints_against(self, seller: bytes) -> int:
        """How many complaint blocks against ``seller`` this book has seen."""
        return self._complaints[seller]

    def search(self, query: Query | None = None, *, include_unavailable: bool = False, **fields: Any) -> list[Listing]:
        """Listings matching ``query`` (or keyword fields of a Query), cheapest first, then oldest."""
        query = _query(query, fields)
        found = [
            listing for listing in self._listings.values()
            if query.matches(listing) and (include_unavailable or self.status(listing) == LIVE)
        ]
        return sorted(found, key=lambda listing: (listing.price, listing.created, listing.listing_id))

    def dataframe(self, query: Query | None = None, *, include_unavailable: bool = True, **fields: Any) -> pd.DataFrame:
        """The (matching) listings as a DataFrame, one row per listing."""
        rows = []
        for listing in self.search(query, include_unavailable=include_unavailable, **fields):
            d = listing.descriptor
            rows.append({
                "listing_id": listing.listing_id,
                "seller": listing.seller.hex(),
                "price": listing.price,
                "kind": d.get("kind"),
                "start": _timestamp(d.get("start"), "start") if d.get("start") else pd.NaT,
                "end": _timestamp(d.get("end"), "end") if d.get("end") else pd.NaT,
                "resolution_seconds": d.get("resolution_seconds"),
                "n_readings": d.get("n_readings"),
                "location": d.get("location"),
                "household_type": d.get("household_type"),
                "cid": listing.cid,
                "created": pd.Timestamp(listing.created, unit="ms", tz="UTC"),
                "expires": pd.Timestamp(listing.expires, unit="ms", tz="UTC") if listing.expires else pd.NaT,
                "status": self.status(listing),
                "seller_complaints": self._complaints[listing.seller],
            })
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    async def wait_for(self, predicate: Callable[[OrderBook], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(book)`` holds (checked whenever the book learns something)."""
        # A NaN timeout never ran out (the wait hung for ever), a negative one gave up at once, and
        # "5" was a TypeError from the loop's clock; MarketService checks its own the same way.
        if (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout)
                or timeout < 0):
            raise MarketError(f"timeout is a finite number of seconds, 0 or more, not {timeout!r}")
        await self._conditions.wait_for(lambda: predicate(self), timeout)

    async def wait_for_listing(self, listing_id: str, timeout: float = 10.0) -> Listing:
        """Wait until the listing is known, then return it."""
        check_listing_id(listing_id)
        await self.wait_for(lambda book: listing_id in book._listings, timeout)
        return self._listings[listing_id]

    def _wake(self) -> None:
        self._conditions.notify()
