"""Content fingerprints of claims (for idempotent adds), the same scalar and vectorised."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

_M64 = (1 << 64) - 1
_SEED = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def text_code(text: str) -> int:
    """A stable 64-bit code of a short text (a program name)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


#: Cents beyond this magnitude do not fit an int64: such an amount is coded by its bits.
_CENTS_LIMIT = 2.0**63


def amount_code(amount: float) -> int:
    """A claim amount as a 64-bit code: its cents, or, for an amount whose cents do not fit 64
    bits (over about 9.2e16; a valid if absurd amount), the bits of the float itself.

    >>> amount_code(12.345), amount_code(1e308) == int(np.float64(1e308).view(np.uint64))
    (1234, True)
    """
    cents = float(amount) * 100.0
    if abs(cents) < _CENTS_LIMIT:
        return int(round(cents)) & _M64
    return int(np.float64(amount).view(np.uint64))


def amount_codes(amount: NDArray[np.float64]) -> NDArray[np.uint64]:
    """:func:`amount_code` of many amounts."""
    amount = np.asarray(amount, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        cents = amount * 100.0
        small = np.abs(cents) < _CENTS_LIMIT
        codes = np.where(small, np.round(np.where(small, cents, 0.0)), 0.0).astype(np.int64)
    return np.where(small, codes.view(np.uint64), amount.view(np.uint64))


def fingerprint(ts_us: int, amount: float, program: str, keys: Sequence[int]) -> int:
    """The fingerprint of one claim's content (event time, amount, program, hashed keys).

    >>> one = fingerprint(0, 1.5, "housing", [1, 2])
    >>> many = fingerprint_many(np.array([0]), np.array([1.5]), ["housing"], np.array([[1, 2]]))
    >>> one == int(many[0])
    True
    """
    h = _SEED
    for v in (ts_us, amount_code(amount), _program_code(program), *keys):
        h = _mix(h ^ (v & _M64))
    return h >> 1


#: :func:`text_code` of a claim's program, remembered (a deployment has a handful of programs).
_program_code = lru_cache(maxsize=1024)(text_code)


def fingerprint_many(
    ts_us: NDArray[np.int64],
    amount: NDArray[np.float64],
    program: Sequence[str],
    keys: NDArray[np.int64],
) -> NDArray[np.int64]:
    """:func:`fingerprint` of many claims at once (``keys``: one row per claim)."""
    codes = {p: text_code(p) for p in set(program)}
    cols = [
        ts_us.astype(np.int64).view(np.uint64),
        amount_codes(amount),
        np.fromiter((codes[p] for p in program), dtype=np.uint64, count=len(program)),
        *(keys[:, j].astype(np.int64).view(np.uint64) for j in range(keys.shape[1])),
    ]
    h = np.full(len(program), _SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            z = h ^ c
            z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
            h = z ^ (z >> np.uint64(31))
    return (h >> np.uint64(1)).astype(np.int64)
