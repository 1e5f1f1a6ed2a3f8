"""Aggregate queries instead of raw data: a fixed, declarative question and its answer's format.

A buyer asks one of a few questions about a seller's readings over a period; the seller's
peer computes the answer locally and sells only the answer, as a data set of format
``enerdatx-answer/1`` (docs/privacy.md). No code of the buyer's ever runs at the seller.

* ``mean_daily_profile``: the mean Wh per 15-minute slot of the day (UTC), 96 rows
* ``peak_hour``: the hour of the day (UTC) with the highest mean consumption, and that mean
* ``monthly_total``: Wh per calendar month (UTC) and how many 15-minute intervals were known
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.errors import EncodingError, MarketError
from enerdatx.meter import interval_consumption
from enerdatx.meter.resample import utc_timestamp
from enerdatx.trustchain.encoding import decode_transaction, encode_transaction

__all__ = ["ANSWER_FORMAT", "QUESTIONS", "AggregateQuery", "answer_query", "answer_descriptor", "load_answer"]

ANSWER_FORMAT = "enerdatx-answer/1"
QUESTIONS = ("mean_daily_profile", "peak_hour", "monthly_total")
QUERY_VERSION = 1
MAX_DAYS = 3660


@dataclass(frozen=True)
class AggregateQuery:
    """One question over ``[start, end)`` (whole UTC days, ISO 8601)."""

    question: str
    start: str
    end: str

    def __post_init__(self) -> None:
        if self.question not in QUESTIONS:
            raise MarketError(f"the question is one of {QUESTIONS}, not {self.question!r}")
        try:
            lo, hi = utc_timestamp(self.start), utc_timestamp(self.end)
        except Exception as exc:  # pandas raises several types on bad dates
            raise MarketError(f"bad query period: {exc}") from exc
        if lo != lo.normalize() or hi != hi.normalize() or not 0 < (hi - lo).days <= MAX_DAYS:
            raise MarketError(f"a query's period is 1..{MAX_DAYS} whole UTC days")

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The period as UTC timestamps."""
        return utc_timestamp(self.start), utc_timestamp(self.end)

    def encode(self) -> bytes:
        """Canonical CBOR ``{v, question, start, end}`` (start and end normalised to ...Z)."""
        lo, hi = self.period
        return encode_transaction({"v": QUERY_VERSION, "question": self.question,
                                   "start": lo.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "end": hi.strftime("%Y-%m-%dT%H:%M:%SZ")})

    @property
    def query_id(self) -> str:
        """Hex sha256 of the encoding: the same question about the same period, the same id."""
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def decode(cls, data: bytes) -> AggregateQuery:
        """Read a query; EncodingError if malformed."""
        try:
            tx = decode_transaction(data)
            if tx.get("v") != QUERY_VERSION or set(tx) != {"v", "question", "start", "end"}:
                raise EncodingError("not a version 1 query")
            query = cls(tx["question"], tx["start"], tx["end"])
        except MarketError as exc:
            raise EncodingError(str(exc)) from exc
        if query.encode() != data:  # one query, one encoding, one id
            raise EncodingError("the query's dates are not written as YYYY-MM-DDT00:00:00Z")
        return query


def _wh(readings: pd.DataFrame, query: AggregateQuery) -> pd.Series:
    lo, hi = query.period
    amounts = interval_consumption(readings, "15min", start=lo, end=hi)["import_kwh"] * 1000
    if amounts.notna().sum() == 0:
        raise MarketError("no readings in the query's period")
    return amounts


def answer_query(readings: pd.DataFrame, query: AggregateQuery) -> bytes:
    """Compute the answer locally from our readings, as ``enerdatx-answer/1`` bytes."""
    wh = _wh(readings, query)
    out = io.StringIO()
    lo, hi = query.period
    out.write(f"# {ANSWER_FORMAT} question={query.question} start={lo:%Y-%m-%dT%H:%M:%SZ} "
              f"end={hi:%Y-%m-%dT%H:%M:%SZ}\n")
    if query.question == "mean_daily_profile":
        slots = wh.groupby(wh.index.hour * 4 + wh.index.minute // 15).mean()
        out.write("slot,import_wh\n")
        for slot in range(96):
            value = slots.get(slot, np.nan)
            cell = "" if pd.isna(value) else str(int(round(value)))
            out.write(f"{slot // 4:02d}:{slot % 4 * 15:02d},{cell}\n")
    elif query.question == "peak_hour":
        hourly = wh.groupby(wh.index.hour).mean() * 4  # mean Wh in that hour of the day
        hour = int(hourly.idxmax())
        out.write(f"hour,import_wh\n{hour:02d},{int(round(hourly[hour]))}\n")
    else:
        months = wh.index.tz_convert("UTC").strftime("%Y-%m")
        grouped = wh.groupby(months)
        out.write("month,import_wh,n_complete\n")
        for month, values in grouped:
            out.write(f"{month},{int(round(values.sum()))},{int(values.notna().sum())}\n")
    return out.getvalue().encode("ascii")


def answer_descriptor(query: AggregateQuery, *, location: str = "unknown",
                      household_type: str = "unknown") -> dict[str, Any]:
    """The public descriptor of an answer: the question, its period and the coarse labels."""
    lo, hi = query.period
    return {"format": ANSWER_FORMAT, "kind": "electricity", "question": query.question, "query": query.query_id,
            "start": f"{lo:%Y-%m-%dT%H:%M:%SZ}", "end": f"{hi:%Y-%m-%dT%H:%M:%SZ}", "location": location,
            "household_type": household_type}


def load_answer(data: bytes) -> pd.DataFrame:
    """Open answer bytes as a DataFrame (the header line names question and period)."""
    head, _, body = data.partition(b"\n")
    if not head.startswith(f"# {ANSWER_FORMAT} ".encode()):
        raise EncodingError(f"not an {ANSWER_FORMAT} answer")
    frame = pd.read_csv(io.BytesIO(body), dtype={"slot": str, "hour": str, "month": str})
    return frame.set_index(frame.columns[0]).astype("Int64")
