"""Energy-community data unions: k households pool readings into one aggregate data set and share its revenue.

The union's operator signs its terms (threshold, sum or mean, the revenue split, an optional
differential-privacy epsilon). A household joins by recording ``edx.union.join`` naming the
terms' hash on its own chain and leaves by ``edx.union.leave``: membership is public and
provable. A round's members mask their readings pairwise (``secagg``), so the operator
learns only the total; it lists the aggregate like any data set and pays every member its
share of each sale with a countersigned ``edx.share`` transaction. docs/privacy.md has the
formats and their vectors.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from enerdatx.crypto import Identity, is_public_key, verify_signature
from enerdatx.errors import EncodingError, SecureAggregationError, TransactionRejectedError, UnionError
from enerdatx.market.formats import DP_EPSILON, PAYMENT, SHARE, parse_payment, parse_share, share_transaction
from enerdatx.meter import cut_dataset, interval_consumption, make_readings
from enerdatx.meter.dataset import DataSet, iso_duration
from enerdatx.meter.resample import parse_resolution, utc_timestamp
from enerdatx.trustchain.encoding import decode_transaction, encode_transaction
from enerdatx.union.secagg import MaskedContribution, Round, mask_values, unmask_sum

__all__ = ["JOIN", "LEAVE", "TERMS_DOMAIN", "UnionTerms", "Contribution", "UnionAggregate", "DataUnion",
           "UnionMember", "split_revenue", "laplace_scale"]

JOIN = "edx.union.join"
LEAVE = "edx.union.leave"
TERMS_DOMAIN = b"enerdatx:union-terms:v1\n"
TERMS_VERSION = 1
SPLITS = ("equal", "readings")
AGGREGATES = ("sum", "mean")
MIN_THRESHOLD = 2
DAY_SECONDS = 86_400
# A round's roster, the members' 32-byte keys, goes out in one message field of at most
# 65,535 bytes: no round has more members, so terms asking for more could never aggregate.
MAX_THRESHOLD = 65_535 // 32


@dataclass(frozen=True)
class UnionTerms:
    """A union's rules, signed by its operator; ``terms_hash`` names them everywhere."""

    name: str
    operator: bytes
    threshold: int  # at least this many members in every aggregate
    aggregate: str  # "sum" or "mean" per interval
    split: str  # "equal", or "readings": by readings contributed
    resolution_seconds: int
    cap_wh: int  # one member's amount per interval is clipped to this (the noise's sensitivity)
    epsilon: str | None  # Laplace noise per interval, as a decimal string; None: no noise
    signature: bytes = b""

    @classmethod
    def create(cls, operator: Identity, name: str, *, threshold: int = 5, aggregate: str = "mean",
               split: str = "equal", resolution: str = "15min", cap_wh: int = 2000,
               epsilon: str | None = None) -> UnionTerms:
        """Write and sign a union's terms."""
        if not isinstance(operator, Identity):  # None was an AttributeError on .public_key
            raise UnionError(f"a union's operator signs its terms: an Identity, not {type(operator).__name__}")
        seconds = int(parse_resolution(resolution).total_seconds())
        unsigned = cls(name, operator.public_key, threshold, aggregate, split, seconds, cap_wh, epsilon)
        unsigned._check()
        return cls(**{**unsigned.__dict__, "signature": operator.sign(TERMS_DOMAIN + unsigned.body())})

    def _check(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name.encode()) <= 64:
            raise UnionError("a union's name is 1..64 bytes of text")
        # The name is what people see of the terms: a blank one showed as nothing in every view,
        # and "delft " was other terms than "delft" that looked the same.
        if not self.name.strip() or self.name != self.name.strip():
            raise UnionError(f"a union's name is not blank and neither begins nor ends with white space: {self.name!r}")
        if not is_public_key(self.operator):
            raise UnionError("a union's operator is a 32-byte public key")
        if type(self.threshold) is not int or not MIN_THRESHOLD <= self.threshold <= MAX_THRESHOLD:
            raise UnionError(f"a union's threshold is an integer from {MIN_THRESHOLD} to {MAX_THRESHOLD:,}"
                             " (the most members a round's roster carries)")
        if self.aggregate not in AGGREGATES or self.split not in SPLITS:
            raise UnionError(f"aggregate is one of {AGGREGATES}, split one of {SPLITS}")
        if type(self.cap_wh) is not int or self.cap_wh <= 0:
            raise UnionError("cap_wh is a positive integer")
        # Signed terms from the wire have no resolution text: 0 or -900 seconds passed before.
        if type(self.resolution_seconds) is not int or not 0 < self.resolution_seconds <= DAY_SECONDS \
                or DAY_SECONDS % self.resolution_seconds:
            raise UnionError(f"resolution_seconds is whole seconds dividing a day, not {self.resolution_seconds!r}")
        # The same grammar as the descriptor's dp_epsilon, which is copied from here.
        if self.epsilon is not None and not (
                isinstance(self.epsilon, str) and DP_EPSILON.match(self.epsilon) and float(self.epsilon) > 0):
            raise UnionError("epsilon is a positive decimal string such as '1.0'")

    def body(self) -> bytes:
        """The canonical CBOR the operator signs."""
        return encode_transaction({"v": TERMS_VERSION, "name": self.name, "operator": self.operator,
                                   "threshold": self.threshold, "aggregate": self.aggregate, "split": self.split,
                                   "resolution_seconds": self.resolution_seconds, "cap_wh": self.cap_wh,
                                   "epsilon": self.epsilon})

    @property
    def terms_hash(self) -> bytes:
        """sha256 over the domain, the body and the signature: the id of these signed terms."""
        return hashlib.sha256(TERMS_DOMAIN + self.body() + self.signature).digest()

    def encode(self) -> bytes:
        """The signed terms as canonical CBOR ``{v, body, signature}``."""
        return encode_transaction({"v": TERMS_VERSION, "body": self.body(), "signature": self.signature})

    @classmethod
    def decode(cls, data: bytes) -> UnionTerms:
        """Read signed terms; UnionError when malformed or not signed by their operator."""
        try:
            outer = decode_transaction(data)
            body = decode_transaction(outer["body"])
            if outer.get("v") != TERMS_VERSION or body.get("v") != TERMS_VERSION:
                raise UnionError("unsupported union terms version")
            terms = cls(body["name"], body["operator"], body["threshold"], body["aggregate"], body["split"],
                        body["resolution_seconds"], body["cap_wh"], body["epsilon"], outer["signature"])
        except (EncodingError, KeyError, TypeError) as exc:
            raise UnionError(f"malformed union terms: {exc}") from exc
        terms._check()
        if not isinstance(terms.signature, bytes) or not verify_signature(
                terms.operator, TERMS_DOMAIN + terms.body(), terms.signature):
            raise UnionError("the union terms are not signed by their operator")
        return terms


def laplace_scale(terms: UnionTerms) -> float:
    """The Laplace noise scale on each interval's sum: cap_wh / epsilon (0 without noise)."""
    return 0.0 if terms.epsilon is None else terms.cap_wh / float(terms.epsilon)


def split_revenue(amount: int, weights: dict[bytes, int]) -> dict[bytes, int]:
    """Split an integer amount by integer weights (largest remainder; ties to the smaller key): sums exactly."""
    if type(amount) is not int or amount < 0 or not weights or any(type(w) is not int or w < 0
                                                                    for w in weights.values()):
        raise UnionError("a split is a non-negative integer amount over non-negative integer weights")
    total = sum(weights.values())
    if total == 0:
        weights, total = {member: 1 for member in weights}, len(weights)
    shares = {member: amount * w // total for member, w in weights.items()}
    left = amount - sum(shares.values())
    by_remainder = sorted(weights, key=lambda m: (-(amount * weights[m] % total), m))
    for member in by_remainder[:left]:
        shares[member] += 1
    return shares


@dataclass(frozen=True)
class Contribution:
    """A member's masked readings for a round, and how many readings it put in (for the split)."""

    masked: MaskedContribution
    readings: int


@dataclass(frozen=True)
class UnionAggregate:
    """One round's result: the aggregate per interval and the data set that is sold."""

    round: Round
    starts: pd.DatetimeIndex
    total_wh: np.ndarray  # exact sum over the roster (before noise); stays with the operator
    counts: np.ndarray  # members with a reading per interval
    released_wh: np.ndarray  # what is sold: sum or mean, noised if the terms say so; -1 = withheld
    readings: dict[bytes, int]
    dataset: DataSet


def _round_id(terms: UnionTerms, start: pd.Timestamp, end: pd.Timestamp, roster: tuple[bytes, ...]) -> bytes:
    period = f"{start.isoformat()}/{end.isoformat()}".encode()
    return hashlib.sha256(b"enerdatx:union-round:v1\n" + terms.terms_hash + period + b"".join(roster)).digest()


def _intervals(terms: UnionTerms, start: Any, end: Any) -> pd.DatetimeIndex:
    step = pd.Timedelta(seconds=terms.resolution_seconds)
    lo, hi = utc_timestamp(start), utc_timestamp(end)
    if hi <= lo or lo != lo.floor(step) or hi != hi.floor(step):
        raise UnionError(f"a round's period is a non-empty span on the {iso_duration(step)} grid")
    return pd.date_range(lo, hi, freq=step, inclusive="left")


class UnionMember:
    """A household in a union: records joining and leaving, and masks its own readings."""

    def __init__(self, ledger: Any, terms: UnionTerms, readings: pd.DataFrame) -> None:
        # None for either made a member that failed at its first join or round (an AttributeError).
        if not isinstance(terms, UnionTerms):
            raise UnionError(f"a member joins signed UnionTerms, not {type(terms).__name__}")
        if not isinstance(readings, pd.DataFrame):
            raise UnionError(f"a member pools a DataFrame of meter readings, not {type(readings).__name__}")
        self.ledger = ledger
        self.terms = terms
        self.readings = readings
        ledger.register_policy(SHARE, self.share_policy)

    @property
    def public_key(self) -> bytes:
        """The member's TrustChain key, which also names it in rosters."""
        return self.ledger.public_key

    def join(self) -> Any:
        """Record our joining on our chain; the operator admits the block."""
        return self.ledger.record(JOIN, {"v": TERMS_VERSION, "terms": self.terms.terms_hash})

    def leave(self) -> Any:
        """Record our leaving; from the next round on our readings are not asked for, nor given."""
        return self.ledger.record(LEAVE, {"v": TERMS_VERSION, "terms": self.terms.terms_hash})

    @property
    def is_member(self) -> bool:
        """True while our latest join/leave record for these terms is a join."""
        return _membership(self.ledger.store.chain(self.public_key), self.terms.terms_hash)

    def check_round(self, round_: Round, start: Any, end: Any) -> pd.DatetimeIndex:
        """The round's intervals, if we are a member and its id is that of these terms, period and roster."""
        _check_round(round_)
        if not self.is_member:
            raise UnionError("we have left this union: our readings do not enter its aggregates")
        starts = _intervals(self.terms, start, end)
        if round_.round_id != _round_id(self.terms, starts[0], starts[-1] + starts.freq, round_.roster):
            raise SecureAggregationError("the round does not match these terms, this period and its roster")
        return starts

    def contribute(self, round_: Round, start: Any, end: Any) -> Contribution:
        """Our masked readings for ``round_``: per interval the clipped Wh and 1 where we have a reading."""
        starts = self.check_round(round_, start, end)
        step = pd.Timedelta(seconds=self.terms.resolution_seconds)
        amounts = interval_consumption(self.readings, step, start=starts[0], end=starts[-1] + step)
        wh = (amounts["import_kwh"].to_numpy() * 1000).round()
        known = ~np.isnan(wh)
        values = np.clip(np.where(known, wh, 0), 0, self.terms.cap_wh).astype(np.int64)
        vector = np.concatenate([values, known.astype(np.int64)])
        return Contribution(mask_values(self.ledger.identity, round_, vector), int(known.sum()))

    def share_policy(self, ledger: Any, proposal: Any) -> None:
        """Countersign a share when it is from our union's operator, names its terms, and we joined."""
        try:
            share = parse_share(proposal.transaction)
        except EncodingError as exc:
            raise TransactionRejectedError(f"malformed_share: {exc}") from exc
        if share.terms != self.terms.terms_hash or proposal.public_key != self.terms.operator:
            raise TransactionRejectedError("unknown_union")
        if not any(block.type == JOIN for block in ledger.store.chain(self.public_key)
                   if block.transaction.get("terms") == share.terms):
            raise TransactionRejectedError("not_a_member")


def _check_round(round_: object) -> None:
    if not isinstance(round_, Round):  # None: an AttributeError on .round_id
        raise SecureAggregationError(f"a round is a Round, not {type(round_).__name__}")


def _membership(chain: list[Any], terms_hash: bytes) -> bool:
    state = False
    for block in chain:
        if block.type in (JOIN, LEAVE) and block.is_record and block.transaction.get("terms") == terms_hash:
            state = block.type == JOIN
    return state


@dataclass
class DataUnion:
    """The operator's side: admit members, run rounds, build the sold aggregate, pay out sales."""

    terms: UnionTerms
    ledger: Any  # the operator's TrustChain
    location: str = "unknown"
    members: set[bytes] = field(default_factory=set)
    rounds: list[UnionAggregate] = field(default_factory=list)
    _paying: set[bytes] = field(default_factory=set, init=False, repr=False)  # sales being paid out now

    def __post_init__(self) -> None:
        if not isinstance(self.terms, UnionTerms):
            raise UnionError(f"a union runs under signed UnionTerms, not {type(self.terms).__name__}")
        if getattr(self.ledger, "public_key", None) != self.terms.operator:
            raise UnionError("the union is run by the operator that signed its terms")
        UnionTerms.decode(self.terms.encode())  # refuses unsigned or tampered terms

    def receive(self, block: Any) -> bool:
        """Take a member's join or leave record (validated into our ledger); True if membership changed."""
        transaction = getattr(block, "transaction", None)  # None or a str: an AttributeError
        if (getattr(block, "type", None) not in (JOIN, LEAVE) or not isinstance(transaction, dict)
                or transaction.get("terms") != self.terms.terms_hash):
            raise UnionError("not a join or leave record for this union")
        if self.ledger.store.get_by_hash(block.hash) is None:
            result = self.ledger.receive(block)
            if result.is_invalid:
                raise UnionError(f"invalid membership record: {result.reasons}")
        held = self.ledger.store.chain(block.public_key)
        now = _membership(held, self.terms.terms_hash)
        before = block.public_key in self.members
        (self.members.add if now else self.members.discard)(block.public_key)
        return now != before

    def open_round(self, start: Any, end: Any) -> Round:
        """The round for ``[start, end)`` over today's members; UnionError below the threshold."""
        starts = _intervals(self.terms, start, end)
        roster = tuple(sorted(self.members))
        if len(roster) < self.terms.threshold:
            raise UnionError(f"{len(roster)} members, the union's terms need at least {self.terms.threshold}")
        if len(roster) > MAX_THRESHOLD:  # its RoundMessage could not be sent (a struct.error)
            raise UnionError(f"{len(roster):,} members: a round's roster carries at most {MAX_THRESHOLD:,}")
        end_ = starts[-1] + starts.freq
        round_ = Round(_round_id(self.terms, starts[0], end_, roster), roster, 2 * len(starts))
        self._check_not_released(round_)
        return round_

    def _check_not_released(self, round_: Round) -> None:
        # The same period and roster is the same data: a second release drew new noise, and a buyer
        # of both averaged it away (epsilon spent twice). Without noise it is the same release again.
        if laplace_scale(self.terms) and any(r.round.round_id == round_.round_id for r in self.rounds):
            raise UnionError("this round (period and roster) was released already, with noise: its aggregate is "
                             "in rounds; a second draw would let buyers average the noise away")

    def aggregate(self, round_: Round, start: Any, end: Any, contributions: list[Contribution],
                  *, rng: np.random.Generator | None = None) -> UnionAggregate:
        """Unmask the round's total and cut the aggregate data set that is sold."""
        _check_round(round_)
        starts = _intervals(self.terms, start, end)
        n = len(starts)
        # Another period than the round's: a ValueError from numpy (shapes that do not broadcast).
        if round_.round_id != _round_id(self.terms, starts[0], starts[-1] + starts.freq, round_.roster) \
                or round_.length != 2 * n:
            raise SecureAggregationError("the round does not match these terms, this period and its roster")
        if not isinstance(contributions, list | tuple) or not all(isinstance(c, Contribution) for c in contributions):
            raise SecureAggregationError("a round's contributions are a list of Contribution")
        # The readings count comes in the clear beside the masked vector: a member that said 2^32 - 1
        # took all of a "readings" split. A count is whole intervals of this period, and together
        # the counts are what the masked counts add up to.
        if any(type(c.readings) is not int or not 0 <= c.readings <= n for c in contributions):
            raise SecureAggregationError(f"a member's readings count is an integer from 0 to the round's {n} intervals")
        self._check_not_released(round_)
        total = unmask_sum(round_, [c.masked for c in contributions])
        claimed, measured = sum(c.readings for c in contributions), int(total[n:].sum())
        if self.terms.split == "readings" and claimed != measured:
            raise SecureAggregationError(f"the members' readings counts add up to {claimed}, their masked counts to "
                                         f"{measured}: a member misstated its count; open a new round without it")
        wh, counts = total[:n].astype(np.float64), total[n:]
        scale = laplace_scale(self.terms)
        if scale:
            rng = rng or np.random.default_rng(secrets.randbits(128))
            wh = wh + rng.laplace(0.0, scale, n)
        if self.terms.aggregate == "mean":
            wh = wh / np.maximum(counts, 1)
        # Intervals fewer than ``threshold`` members measured are withheld, never sold.
        released = np.where(counts >= self.terms.threshold, np.clip(np.round(wh), 0, None), -1).astype(np.int64)
        readings = {c.masked.member: c.readings for c in contributions}
        result = UnionAggregate(round_, starts, total[:n], counts, released, readings,
                                self._dataset(starts, released, len(round_.roster)))
        self.rounds.append(result)
        return result

    def _dataset(self, starts: pd.DatetimeIndex, released: np.ndarray, members: int) -> DataSet:
        step = pd.Timedelta(seconds=self.terms.resolution_seconds)
        # The aggregate as a meter's import register, so it is cut and sold like any readings;
        # a withheld interval becomes a gap (no reading at its edges), hence an unknown amount.
        stamps = starts.append(pd.DatetimeIndex([starts[-1] + step]))
        register = np.concatenate([[0], np.cumsum(np.where(released < 0, 0, released))]) / 1000
        keep = np.ones(len(stamps), dtype=bool)
        for i in np.flatnonzero(released < 0):
            keep[i] = keep[i + 1] = False
        readings = make_readings(stamps[keep], {"import_kwh": register[keep]},
                                 meter_id=f"union-{self.terms.terms_hash.hex()[:16]}", source="union")
        dataset = cut_dataset(readings, start=starts[0], end=stamps[-1], resolution=step, kind="electricity",
                              location=self.location, household_type="union", max_gap=step)
        descriptor = {**dataset.descriptor, "union_terms": self.terms.terms_hash.hex(), "union_members": members,
                      "aggregate": self.terms.aggregate, "dp_epsilon": self.terms.epsilon}
        if self.terms.epsilon is None:
            del descriptor["dp_epsilon"]
        return DataSet(dataset.plaintext, descriptor)

    def shares(self, amount: int, round_: UnionAggregate) -> dict[bytes, int]:
        """Each member's share of ``amount`` by the terms' rule (it adds up to ``amount``)."""
        if not any(r is round_ for r in self.rounds):  # another union's round paid its roster (or a KeyError)
            raise UnionError("a share is of one of this union's rounds (in rounds)")
        roster = round_.round.roster
        weights = {m: 1 for m in roster} if self.terms.split == "equal" else {m: round_.readings[m] for m in roster}
        return split_revenue(amount, weights)

    def sales(self, listing_hash: bytes) -> list[Any]:
        """Our payment agreements for a listing: each is one sale whose revenue is to be split."""
        out = []
        for block in self.ledger.store.chain(self.ledger.public_key):
            if block.type == PAYMENT and not block.is_proposal:
                try:
                    if parse_payment(block.transaction).listing == listing_hash:
                        out.append(block)
                except EncodingError:
                    continue
        return out

    def paid_out(self, sale_hash: bytes) -> dict[bytes, int]:
        """Shares of one sale already countersigned by their members."""
        paid: dict[bytes, int] = {}
        for block in self.ledger.store.chain(self.ledger.public_key):
            ours = block.type == SHARE and block.is_proposal and not block.is_record
            if (ours and block.transaction.get("sale") == sale_hash
                    and self.ledger.store.agreements_for(block.public_key, block.sequence_number)):
                paid[block.link_public_key] = parse_share(block.transaction).amount
        return paid

    async def pay_out(self, propose: Any, sale: Any, round_: UnionAggregate) -> list[tuple[Any, Any]]:
        """Propose every member's share of one sale (``propose`` as TrustChainCommunity.propose)."""
        # A payment we made (a purchase), or any other block, was split as if it were revenue.
        if (getattr(sale, "type", None) != PAYMENT or sale.is_proposal
                or sale.public_key != self.ledger.public_key or self.ledger.store.get_by_hash(sale.hash) is None):
            raise UnionError("a sale is one of our payment agreements on our chain (see sales())")
        amount = parse_payment(sale.transaction).amount
        shares = self.shares(amount, round_)
        # Two at once each saw no share countersigned yet and paid every member twice.
        if sale.hash in self._paying:
            raise UnionError("this sale is being paid out already: await that pay_out")
        self._paying.add(sale.hash)
        try:
            done = self.paid_out(sale.hash)
            pairs = []
            for member, share in sorted(shares.items()):
                if share == 0 or member in done:
                    continue
                pairs.append(await propose(member, SHARE, share_transaction(self.terms.terms_hash, sale.hash, share)))
        finally:
            self._paying.discard(sale.hash)
        return pairs
