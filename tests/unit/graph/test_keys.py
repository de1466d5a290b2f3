"""Keyed hashing and identity-key loading."""

import hashlib
import hmac
import os
import stat

import pytest

from graph.keys import (
    KeyedHasher,
    KeyNotConfiguredError,
    load_or_create_demo_key,
    require_key,
)


def test_hash_is_hmac_sha256_of_kind_and_value():
    key = os.urandom(32)
    h = KeyedHasher(key)
    full = hmac.new(key, b"phone\x1f+14155550132", hashlib.sha256).digest()
    assert h.digest(b"phone\x1f+14155550132") == full
    assert h.hash("phone", "+14155550132") == int.from_bytes(full[:8], "big") & ((1 << 63) - 1)


def test_hash_depends_on_key_and_kind():
    a, b = KeyedHasher(b"a" * 32), KeyedHasher(b"b" * 32)
    assert a.hash("email", "x@y.org") != b.hash("email", "x@y.org")
    assert a.hash("email", "x@y.org") != a.hash("name", "x@y.org")
    assert a.fingerprint != b.fingerprint
    assert a.hash_many("email", ["x@y.org", None]) == [a.hash("email", "x@y.org"), 0]


def test_hash_many_is_hash_on_each_value():
    h = KeyedHasher(b"k" * 32)
    values = ["+14155550132", None, "", "x\u00e9y", "+14155550132", "a" * 300]
    for kind in ("phone", "name", "ip_block"):
        assert h.hash_many(kind, values) == [0 if v is None else h.hash(kind, v) for v in values]


def test_missing_or_short_key_is_refused():
    with pytest.raises(KeyNotConfiguredError, match="got none"):
        require_key(None)
    with pytest.raises(KeyNotConfiguredError, match="at least 32 bytes, got 5"):
        KeyedHasher(b"short")


def test_demo_key_is_created_owner_only_and_reused(tmp_path):
    path = tmp_path / "keys" / "identity.key"
    key = load_or_create_demo_key(path)
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_demo_key(path) == key


def test_demo_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "identity.key"
    load_or_create_demo_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyNotConfiguredError, match="expected 0600"):
        load_or_create_demo_key(path)


def test_hasher_pickles_as_its_key_and_never_shows_it():
    import pickle

    key = os.urandom(40)
    h = KeyedHasher(key)
    again = pickle.loads(pickle.dumps(h))
    assert again.hash("phone", "+14155550132") == h.hash("phone", "+14155550132")
    assert again.fingerprint == h.fingerprint
    assert key.hex() not in repr(h) and repr(key) not in repr(h)


def test_fingerprints_agree_one_by_one_and_by_the_frame_for_every_amount() -> None:
    """Cents for an amount that fits (unchanged since stored), the float's bits beyond 64-bit
    cents: the scalar and the vectorised fingerprint agree everywhere and never overflow."""
    import numpy as np

    from graph.fingerprint import fingerprint, fingerprint_many

    amounts = np.array(
        [0.0, 0.005, 0.015, -2.5, 1234.56, 9.2e16, 9.3e16, 1e17, -1e17, 1e300, 1.7976931348623157e308]
    )
    keys = np.arange(3 * len(amounts), dtype=np.int64).reshape(len(amounts), 3)
    many = fingerprint_many(np.arange(len(amounts)), amounts, ["housing"] * len(amounts), keys)
    one = [
        fingerprint(i, float(a), "housing", keys[i].tolist()) for i, a in enumerate(amounts)
    ]
    assert one == many.tolist()
    assert len(set(one)) == len(one)
    assert fingerprint(0, 1234.56, "housing", [1]) == 7006835008281297835  # as stored before
