"""Pairwise masks cancel exactly in the sum, and one member's masked vector looks uniform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare, kstest

from enerdatx.crypto import Identity
from enerdatx.errors import SecureAggregationError
from enerdatx.union.secagg import MaskedContribution, Round, expand_mask, mask_values, pairwise_seed, unmask_sum

MEMBERS = [Identity.from_seed(bytes([i]) * 32) for i in range(1, 6)]


def _round(length: int = 500, members=MEMBERS) -> Round:
    return Round(bytes(32), tuple(sorted(m.public_key for m in members)), length)


def test_both_sides_of_a_pair_derive_the_same_seed_and_rounds_differ():
    a, b = MEMBERS[:2]
    assert pairwise_seed(a, b.public_key, bytes(32)) == pairwise_seed(b, a.public_key, bytes(32))
    assert pairwise_seed(a, b.public_key, bytes(32)) != pairwise_seed(a, b.public_key, b"\x01" * 32)
    assert pairwise_seed(a, b.public_key, bytes(32)) != pairwise_seed(a, MEMBERS[2].public_key, bytes(32))


def test_masks_cancel_exactly_in_the_sum():
    round_ = _round()
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 4000, round_.length) for _ in MEMBERS]
    contributions = [mask_values(m, round_, v) for m, v in zip(MEMBERS, values, strict=True)]
    assert np.array_equal(unmask_sum(round_, contributions), np.sum(values, axis=0))
    for contribution, plain in zip(contributions, values, strict=True):
        assert not np.array_equal(contribution.masked, plain.astype(np.uint64))


def test_one_members_view_is_uniform():
    # The aggregator's view of a member whose readings are all zero is its mask alone; it must
    # be uniform on 0..2^64-1 (KS on the value, chi-square on the top byte), while the plain
    # readings plainly are not.
    round_ = _round(length=20_000)
    view = mask_values(MEMBERS[0], round_, np.zeros(round_.length, dtype=np.int64)).masked
    profile = mask_values(MEMBERS[1], round_, np.full(round_.length, 150, dtype=np.int64)).masked
    for masked in (view, profile):
        assert kstest(masked.astype(np.float64) / 2.0**64, "uniform").pvalue > 0.001
        counts = np.bincount((masked >> np.uint64(56)).astype(np.int64), minlength=256)
        assert chisquare(counts).pvalue > 0.001
    plain = np.bincount(np.full(round_.length, 150) % 256, minlength=256)
    assert chisquare(plain).pvalue < 1e-10


def test_mask_expansion_is_the_chacha20_stream():
    mask = expand_mask(bytes(32), 2)
    assert mask.dtype == np.uint64 and mask.tolist() == expand_mask(bytes(32), 3).tolist()[:2]


def test_a_missing_member_leaves_the_masks_uncancelled_and_is_refused():
    round_ = _round(length=4)
    contributions = [mask_values(m, round_, np.ones(4, dtype=np.int64)) for m in MEMBERS]
    with pytest.raises(SecureAggregationError, match="1 of 5"):
        unmask_sum(round_, contributions[1:])
    with pytest.raises(SecureAggregationError, match="twice"):
        unmask_sum(round_, contributions + contributions[:1])
    other = Round(b"\x02" * 32, round_.roster, 4)
    with pytest.raises(SecureAggregationError, match="another round"):
        unmask_sum(other, contributions)
    with pytest.raises(SecureAggregationError, match="not in"):
        unmask_sum(round_, [*contributions, MaskedContribution(bytes(32), b"\x09" * 32, contributions[0].masked)])


@pytest.mark.parametrize("values", [np.array([1, 2, 3]), np.array([-1, 0, 0, 0]), np.array([0.5, 0, 0, 0])])
def test_bad_values_are_refused(values):
    with pytest.raises(SecureAggregationError):
        mask_values(MEMBERS[0], _round(length=4), values)


def test_bad_rounds_are_refused():
    keys = sorted(m.public_key for m in MEMBERS)
    with pytest.raises(SecureAggregationError):
        Round(bytes(32), tuple(reversed(keys)), 4)
    with pytest.raises(SecureAggregationError):
        Round(bytes(32), tuple(keys[:1]), 4)
    with pytest.raises(SecureAggregationError):
        mask_values(Identity.from_seed(bytes([9]) * 32), _round(length=4), np.zeros(4, dtype=np.int64))


KEYS = tuple(sorted(m.public_key for m in MEMBERS))


@pytest.mark.parametrize(
    ("round_id", "roster", "length", "message"),
    [
        ("x" * 32, KEYS, 4, "a round id is 32 bytes"),  # a str id made a round
        (None, KEYS, 4, "a round id is 32 bytes"),  # a TypeError from len()
        (bytes(32), (b"a", b"b"), 4, "32-byte public keys"),  # keys no member can have
        (bytes(32), ("a", "b"), 4, "32-byte public keys"),
        (bytes(32), list(KEYS), 4, "a roster is a tuple"),
        (bytes(32), KEYS[::-1], 4, "sorted"),
        (bytes(32), KEYS, 1.5, "a round's vector has"),  # made a round
        (bytes(32), KEYS, True, "a round's vector has"),
        (bytes(32), KEYS, "4", "a round's vector has"),  # a TypeError from <
    ],
)
def test_a_round_refuses_what_no_aggregation_can_use(round_id, roster, length, message) -> None:
    with pytest.raises(SecureAggregationError, match=message):
        Round(round_id, roster, length)
