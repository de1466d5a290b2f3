"""Strict JSON text: the values json.dumps wrote, compact, null for NaN and +/-inf."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fraudlens.jsontext import StrictJson, finite, json_text


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
