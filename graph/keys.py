"""Keyed hashing of normalised identity values (HMAC-SHA256) and identity-key loading."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from fraudlens.settings import KeyNotConfiguredError, load_or_create_key

__all__ = [
    "KeyMismatchError",
    "KeyNotConfiguredError",
    "KeyedHasher",
    "MIN_KEY_BYTES",
    "load_or_create_demo_key",
    "require_key",
]

#: Shortest accepted key.
MIN_KEY_BYTES = 32
_BLOCK = 64  # SHA-256 block size
_MASK63 = (1 << 63) - 1


class KeyMismatchError(RuntimeError):
    """The graph state was written with another identity key than the one given."""


def require_key(key: bytes | None) -> bytes:
    """Return ``key`` when it is usable, else raise :class:`KeyNotConfiguredError`.

    Parameters
    ----------
    key : bytes or None
        The identity key from settings.

    Returns
    -------
    bytes
        The same key.
    """
    if key is None:
        raise KeyNotConfiguredError(
            "no identity-hashing key configured: expected FRAUDLENS_HMAC_KEY or "
            "FRAUDLENS_HMAC_KEY_FILE (or the demo key), got none"
        )
    if not isinstance(key, bytes | bytearray):
        raise KeyNotConfiguredError(f"the identity key must be bytes, got {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise KeyNotConfiguredError(
            f"the identity key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}"
        )
    return bytes(key)


def load_or_create_demo_key(path: str | Path) -> bytes:
    """The demo key at ``path``; created random and owner-only (0600) on first use.

    A key file readable by group or others is refused with :class:`KeyNotConfiguredError`.
    """
    return require_key(load_or_create_key(Path(path)))


class KeyedHasher:
    """HMAC-SHA256 of ``kind`` and a normalised value, cut to a positive 63-bit integer.

    The kind is part of the message, so equal values of different kinds never collide on
    purpose. The pads are computed once, so one hash costs two SHA-256 compressions. A hasher
    pickles as its key (for a batch build's helper process; never write one to disk).

    Parameters
    ----------
    key : bytes
        The identity key (at least 32 bytes).

    Examples
    --------
    >>> h = KeyedHasher(b"k" * 32)
    >>> h.hash("phone", "+14155550132") == h.hash("phone", "+14155550132")
    True
    >>> h.hash("phone", "+14155550132") == h.hash("email", "+14155550132")
    False
    """

    __slots__ = ("_inner", "_key", "_outer", "fingerprint")

    def __init__(self, key: bytes) -> None:
        key = require_key(key)
        self._key = key
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        #: A short public fingerprint of the key, stored with the state to detect a wrong key.
        self.fingerprint: str = hmac.new(key, b"fraudlens identity key", "sha256").hexdigest()[:16]

    def __reduce__(self) -> tuple[type[KeyedHasher], tuple[bytes]]:
        return (KeyedHasher, (self._key,))

    def __repr__(self) -> str:  # never show the key
        return f"KeyedHasher(fingerprint={self.fingerprint})"

    def digest(self, message: bytes) -> bytes:
        """The full HMAC-SHA256 of ``message``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hash(self, kind: str, value: str) -> int:
        """The keyed 64-bit hash of one normalised value of ``kind``."""
        h = int.from_bytes(self.digest(f"{kind}\x1f{value}".encode())[:8], "big") & _MASK63
        return h or 1  # 0 means "missing"

    def hash_many(self, kind: str, values: list[str | None]) -> list[int]:
        """Hashes of many normalised values (0 for a missing one), each distinct value once.

        The same as :meth:`hash` on each value, with its steps inlined (a batch build hashes
        about four new values a claim).
        """
        cache: dict[str, int] = {}
        out: list[int] = []
        inner_pad, outer_pad, from_bytes = self._inner, self._outer, int.from_bytes
        prefix = f"{kind}\x1f"
        for v in values:
            if v is None:
                out.append(0)
                continue
            h = cache.get(v)
            if h is None:
                inner = inner_pad.copy()
                inner.update((prefix + v).encode())
                outer = outer_pad.copy()
                outer.update(inner.digest())
                h = from_bytes(outer.digest()[:8], "big") & _MASK63 or 1  # 0 means "missing"
                cache[v] = h
            out.append(h)
        return out
