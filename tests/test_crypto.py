import os
import stat

import pytest

from enerdatx.crypto import (
    Identity,
    decrypt_data,
    encrypt_data,
    new_data_key,
    seal_to,
    verify_signature,
)
from enerdatx.errors import DataVerificationError, KeyFileError


@pytest.mark.parametrize(("seed", "error", "message"), [
    (None, TypeError, "not NoneType"), ("s" * 32, TypeError, "not str"), (b"s" * 31, ValueError, "not 31"),
])
def test_a_seed_is_32_bytes_and_the_error_says_so(seed, error, message):
    with pytest.raises(error, match=f"an Ed25519 seed is 32 bytes, {message}$"):
        Identity.from_seed(seed)  # None failed in len(), a str in PyNaCl


def test_key_file_round_trip_has_mode_0600(tmp_path):
    identity = Identity.generate()
    path = tmp_path / "identity.key"
    identity.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Identity.load(path).public_key == identity.public_key


def test_key_file_mode_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        Identity.generate().save(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "first line"),
        (b"\xff\xfe garbage", "not ASCII"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", "first line"),
        (b"enerdatx-identity v1\ned25519-seed zz\ned25519-public 00\n", "non-hex"),
        (b"enerdatx-identity v1\ned25519-seed 00\ned25519-public 00\n", "not 32 bytes"),
        (b"x" * 5000, "too large"),
    ],
)
def test_corrupt_or_foreign_key_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        Identity.load(path)


def test_a_flipped_seed_digit_is_detected(tmp_path):
    path = tmp_path / "identity.key"
    Identity.generate().save(path)
    lines = path.read_text().splitlines()
    seed = lines[1].split(" ")[1]
    lines[1] = "ed25519-seed " + ("1" if seed[0] != "1" else "2") + seed[1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(KeyFileError, match="does not match"):
        Identity.load(path)


def test_a_world_readable_key_file_is_refused(tmp_path):
    path = tmp_path / "identity.key"
    Identity.generate().save(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        Identity.load(path)


def test_load_or_create_is_stable(tmp_path):
    first = Identity.load_or_create(tmp_path / "k")
    assert Identity.load_or_create(tmp_path / "k").public_key == first.public_key


def test_signatures_verify_only_for_the_signer_and_message():
    alice, bob = Identity.generate(), Identity.generate()
    signature = alice.sign(b"message")
    assert verify_signature(alice.public_key, b"message", signature)
    assert not verify_signature(bob.public_key, b"message", signature)
    assert not verify_signature(alice.public_key, b"messagE", signature)
    assert not verify_signature(alice.public_key[:31], b"message", signature)


def test_sealed_key_opens_only_for_the_recipient():
    buyer, other = Identity.generate(), Identity.generate()
    sealed = seal_to(buyer.public_key, b"k" * 32)
    assert buyer.unseal(sealed) == b"k" * 32
    with pytest.raises(DataVerificationError):
        other.unseal(sealed)


def test_secret_box_detects_tampering_and_wrong_keys():
    key = new_data_key()
    box = encrypt_data(key, b"readings")
    assert decrypt_data(key, box) == b"readings"
    tampered = box[:-1] + bytes([box[-1] ^ 1])
    with pytest.raises(DataVerificationError):
        decrypt_data(key, tampered)
    with pytest.raises(DataVerificationError):
        decrypt_data(new_data_key(), box)


def test_identity_repr_never_shows_the_seed():
    identity = Identity.generate()
    assert identity.seed.hex() not in repr(identity)
