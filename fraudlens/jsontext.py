"""Strict JSON text for what fraudlens stores and answers: NaN and +/-inf written as null."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +inf, -inf) replaced by None, in nested dicts,
    lists and tuples too (tuples become lists, as JSON writes them); the rest unchanged.

    >>> finite({"outlier": float("inf"), "top": [("amount", float("nan")), ("hour", 0.5)]})
    {'outlier': None, 'top': [['amount', None], ['hour', 0.5]]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


class StrictJson:
    """Writes a value as JSON text, with ``json.dumps``'s keyword ``options``, but null for a
    non-finite float instead of the bare tokens ``NaN`` / ``Infinity``.

    Those tokens are not JSON: PostgreSQL's json type refuses them, so does any strict client
    parser, and SQLite stores them and hands back floats that no JSON answer can carry. A value
    without a non-finite float gets exactly ``json.dumps(value, **options)``'s text, in one
    pass of the C encoder; only a value holding one is copied through :func:`finite` and
    written again. (A class, not a closure: psycopg caches a JSON dumper per function, and
    warns of a leak for a closure.)

    >>> StrictJson(separators=(",", ":"))({"a": [1.5, float("nan")], "b": -float("inf")})
    '{"a":[1.5,null],"b":null}'
    """

    def __init__(self, **options: Any) -> None:
        self._encode = json.JSONEncoder(allow_nan=False, **options).encode

    def __call__(self, value: Any) -> str:
        try:
            return self._encode(value)
        except ValueError:  # a non-finite float somewhere in it
            return self._encode(finite(value))


_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_fallback = StrictJson()
_compact = StrictJson(ensure_ascii=False, separators=(",", ":"))


def json_text(value: Any) -> str:
    """The JSON text of every JSON value fraudlens stores: compact, UTF-8, every float in its
    shortest form that reads back as the same float, non-finite floats as null.

    :func:`fraudlens.database.make_engine` makes it the engine's JSON serializer, so
    SQLAlchemy's inserts and :class:`fraudlens.database.RowEncoder` write the same text. Written
    by orjson (a decision-log row's feature vector: about 3 us, against 28 us for ``json.dumps``);
    what orjson cannot write (an integer beyond 64 bits) is written by :class:`StrictJson`, and
    what JSON cannot hold (a set) raises ``TypeError``. Text stored before, by ``json.dumps``,
    reads back as the same values.

    >>> json_text({"risk": 0.25, "scores": [1e-07, float("nan")], "note": "élevé"})
    '{"risk":0.25,"scores":[1e-7,null],"note":"élevé"}'
    """
    try:
        return orjson.dumps(value, option=_ORJSON).decode()
    except TypeError:
        return _fallback(value)


def json_utf8(value: Any) -> bytes:
    """An answer's body: the text :func:`json_text` writes, as UTF-8 bytes (orjson writes bytes,
    so an answer skips a decode and an encode). What orjson cannot write is written compact and
    UTF-8 by :class:`StrictJson`, an unpaired surrogate as its JSON escape, where
    :func:`json_text` keeps ``json.dumps``'s spaced, ASCII-escaped text.

    >>> json_utf8({"risk": 0.5, "reasons": [], "case_id": None})
    b'{"risk":0.5,"reasons":[],"case_id":null}'
    >>> json_utf8({"n": 10**20, "name": "Zoë"}).decode()
    '{"n":100000000000000000000,"name":"Zoë"}'
    """
    try:
        return orjson.dumps(value, option=_ORJSON)
    except TypeError:
        # an unpaired surrogate in a string is written as its JSON escape (orjson refuses it,
        # UTF-8 cannot hold it); fraudlens' checks keep them out, this keeps an answer an answer
        return _compact(value).encode("utf-8", "backslashreplace")


def parse_json(data: bytes) -> Any:
    """The value of a JSON document, exactly as ``json.loads`` reads it.

    orjson reads a well-formed UTF-8 document in about a quarter of ``json.loads``' time, and
    gives the same value (the same floats, the last of repeated keys). What orjson refuses and
    ``json.loads`` takes (the ``NaN`` / ``Infinity`` tokens, UTF-16 text, a lone surrogate
    escape) is read by ``json.loads``, which also raises what it always raised for text that is
    not JSON (``ValueError``, or ``RecursionError`` for deep nesting; orjson reads up to 1,024
    levels, where ``json.loads`` may give up a few dozen levels earlier). orjson reads an integer
    beyond 64 bits as a float, ``json.loads`` as an int (an id ``"18446744073709551616"`` sent as a
    number must stay that id): a document with 19 digits in a row goes to ``json.loads`` too.

    >>> parse_json(b'{"amount": 12.5, "amount": NaN}')
    {'amount': nan}
    >>> parse_json(b'{"claim_id": 18446744073709551616}')
    {'claim_id': 18446744073709551616}
    """
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


#: 19 digits in a row: possibly an integer orjson would read as a float (beyond int64's range).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
