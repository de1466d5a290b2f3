"""Strict JSON text: the values json.dumps wrote, compact, null for NaN and +/-inf."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fraudlens.jsontext import StrictJson, finite, json_text, json_utf8, parse_json


def strict_loads(text: str):
    """``json.loads`` refusing the NaN / Infinity tokens that are not JSON."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


FINITE = [
    None,
    {"outlier": 0.125, "supervised": np.float64(1e-7), "n": 3, "ok": True},
    [{"code": "r1", "sentence": "Montant élevé — 3× la médiane", "value": None}],
    {"top": [["amount", 0.5], ("phone", -0.25)], "big": 1.7976931348623157e308},
    "text",
]


@pytest.mark.parametrize("value", FINITE)
def test_finite_values_read_back_as_json_dumps_wrote_them(value) -> None:
    """The stored text is compact (orjson's), but reads back as the text json.dumps wrote
    before: the same values, every float the same float."""
    text = json_text(value)
    assert strict_loads(text) == json.loads(json.dumps(value))
    assert ", " not in text and ": " not in text
    compact = StrictJson(ensure_ascii=False, separators=(",", ":"))
    assert compact(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_non_finite_floats_anywhere_are_null() -> None:
    value = {
        "outlier": math.inf,
        "outlier_risk": 1.0,
        "supervised": np.float64("nan"),
        "reasons": [{"contribution": -math.inf, "value": 2.5}],
        "pairs": [("a", float("nan")), ("b", 1.5)],
    }
    text = json_text(value)
    assert strict_loads(text) == {
        "outlier": None,
        "outlier_risk": 1.0,
        "supervised": None,
        "reasons": [{"contribution": None, "value": 2.5}],
        "pairs": [["a", None], ["b", 1.5]],
    }
    assert strict_loads(text) == json.loads(json.dumps(finite(value)))
    assert json_text(math.nan) == "null"
    assert value["outlier"] == math.inf  # the value itself is left as it was


def test_what_json_cannot_hold_still_fails() -> None:
    with pytest.raises(TypeError):
        json_text({"x": {1, 2}})


def test_an_integer_beyond_64_bits_is_written_too() -> None:
    assert json_text({"n": 10**30, "x": math.inf}) == '{"n": 1000000000000000000000000000000, "x": null}'


def test_every_float_reads_back_as_itself() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000),
                             [5e-324, 1.7976931348623157e308, -0.0, 1e-5, 1e16, 0.1 + 0.2]])
    back = strict_loads(json_text({"v": values.tolist()}))["v"]
    assert back == values.tolist()
    assert all(math.copysign(1, b) == math.copysign(1, v) for b, v in zip(back, values, strict=True))


DOCUMENTS = [
    b'{"claim_id": "c-1", "amount": 1093.2, "note": "\\u00e9l\\u00e8ve", "n": [1, -2, 0.1]}',
    b'{"a": 1, "a": 2}',  # the last of repeated keys
    b'{"amount": NaN, "x": Infinity, "y": -Infinity}',  # tokens only json.loads takes
    b'{"amount": 1e400}',  # beyond a float: json.loads gives inf
    b'{"claim_id": 18446744073709551616, "n": -9223372036854775809}',  # beyond 64 bits: ints
    b'{"phone": 9300000000000000000}',  # 19 digits
    b'{"s": "\\ud800"}',  # a lone surrogate
    '{"a": 1}'.encode("utf-16"),
    b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
    b' {"a": 1e-7, "b": 5e-324, "c": -0.0} ',
]


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_parse_json_reads_what_json_loads_reads(doc: bytes) -> None:
    got, want = parse_json(doc), json.loads(doc)
    assert repr(got) == repr(want)  # repr: nan == nan, int vs float, -0.0 vs 0.0
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("doc", [b"", b"{", b'{"a": 01}', b'{"a": 1}x', b"[" * 5000 + b"]" * 5000, b"\xff"])
def test_parse_json_refuses_what_json_loads_refuses(doc: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)) as theirs:
        json.loads(doc)
    with pytest.raises(theirs.type):
        parse_json(doc)


def test_json_utf8_is_json_text_compact() -> None:
    value = {"risk": 0.25, "x": math.nan, "name": "Zoë"}
    assert json_utf8(value) == json_text(value).encode()
    big = {"n": 10**30, "name": "Zoë", "x": math.inf}  # orjson cannot write it: StrictJson does
    assert json_utf8(big) == '{"n":1000000000000000000000000000000,"name":"Zoë","x":null}'.encode()


def test_an_unpaired_surrogate_is_written_as_its_escape() -> None:
    value = {"field": "name" + chr(0xDFFF), "n": 10**30}
    assert json.loads(json_utf8(value)) == value
    assert json.loads(json_text(value)) == value
