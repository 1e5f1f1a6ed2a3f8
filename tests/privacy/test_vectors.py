"""The test vectors of docs/privacy.md: descriptor entries, secure-aggregation seeds, union terms."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError
from enerdatx.market.formats import validate_descriptor
from enerdatx.union import UnionTerms
from enerdatx.union.secagg import SEED_DOMAIN, expand_mask, pairwise_seed

VECTORS = Path(__file__).parents[1] / "vectors"


def _rows(name: str) -> list[dict[str, str]]:
    with open(VECTORS / name, newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


@pytest.mark.parametrize("row", _rows("privacy_descriptors.csv"), ids=lambda row: row["name"])
def test_descriptor_vectors(row):
    descriptor = json.loads(row["descriptor_json"])
    if row["valid"] == "1":
        assert validate_descriptor(descriptor) == descriptor
    else:
        with pytest.raises(EncodingError):
            validate_descriptor(descriptor)


@pytest.mark.parametrize("row", _rows("secagg_seeds.csv"), ids=lambda row: row["name"])
def test_secagg_seed_vectors(row):
    a = Identity.from_seed(bytes.fromhex(row["seed_a"]))
    b = Identity.from_seed(bytes.fromhex(row["seed_b"]))
    round_id = bytes.fromhex(row["round_id"])
    seed = pairwise_seed(a, b.public_key, round_id)
    assert seed.hex() == row["pairwise_seed"]
    assert " ".join(map(str, expand_mask(seed, 4).tolist())) == row["mask_first_4"]
    # The X25519 step, independently: the `cryptography` package's own implementation.
    ours = X25519PrivateKey.from_private_bytes(a.signing_key.to_curve25519_private_key().encode())
    theirs = X25519PublicKey.from_public_bytes(b.signing_key.verify_key.to_curve25519_public_key().encode())
    import hashlib

    pair = b"".join(sorted((a.public_key, b.public_key)))
    expected = hashlib.blake2b(SEED_DOMAIN + round_id + pair + ours.exchange(theirs), digest_size=32).digest()
    assert seed == expected


@pytest.mark.parametrize("row", _rows("union_terms.csv"), ids=lambda row: row["name"])
def test_union_terms_vectors(row):
    terms = UnionTerms.create(Identity.from_seed(bytes.fromhex(row["operator_seed"])), row["name_"],
                              threshold=int(row["threshold"]), aggregate=row["aggregate"], split=row["split"],
                              resolution=row["resolution"], cap_wh=int(row["cap_wh"]), epsilon=row["epsilon"] or None)
    assert terms.encode().hex() == row["encoded"]
    assert terms.terms_hash.hex() == row["terms_hash"]
    assert UnionTerms.decode(bytes.fromhex(row["encoded"])) == terms
