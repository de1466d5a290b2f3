"""Reason codes and sentences: turn feature contributions into what an investigator reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a score: a code, a sentence, and how much it pushed the risk."""

    code: str
    sentence: str
    contribution: float
    value: float | None = None
    source: str = "model"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "sentence": self.sentence,
            "contribution": round(self.contribution, 6),
            "value": None if self.value is None or not np.isfinite(self.value) else self.value,
            "source": self.source,
        }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fmt_value(name: str, value: float) -> str:
    if not np.isfinite(value):
        return "missing"
    if "=" in name or name.startswith("is_") or name.endswith("_flag"):
        return "yes" if value >= 0.5 else "no"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def reasons_from_contributions(
    names: Sequence[str],
    values: NDArray[np.float64],
    contributions: NDArray[np.float64],
    describe: Callable[[str], str],
    top: int = 5,
    source: str = "model",
) -> list[Reason]:
    """The ``top`` features that raised the score most, as sentences.

    ``contributions`` are per-feature additive contributions (e.g. exact TreeSHAP values in
    margin space); only positive ones (pushing towards review) become reasons.

    >>> r = reasons_from_contributions(["amount_log", "hour"], np.array([9.1, 3.0]),
    ...     np.array([1.2, -0.4]), lambda n: n.replace("_", " "))
    >>> r[0].sentence
    'Amount log: 9.10 (raised the risk)'
    """
    order = np.argsort(-contributions, kind="stable")
    out: list[Reason] = []
    for j in order[:top]:
        c = float(contributions[j])
        if c <= 0:
            break
        name = names[j]
        v = float(values[j])
        out.append(
            Reason(
                code=name,
                sentence=f"{_capital(describe(name))}: {_fmt_value(name, v)} (raised the risk)",
                contribution=c,
                value=v,
                source=source,
            )
        )
    return out


def reasons_from_deviation(
    names: Sequence[str],
    values: NDArray[np.float64],
    centre: NDArray[np.float64],
    scale: NDArray[np.float64],
    describe: Callable[[str], str],
    top: int = 5,
) -> list[Reason]:
    """Reasons for an outlier score: the features furthest from their training median.

    A robust z-score (distance from the training median in units of the training IQR) ranks
    features; this explains which values are unusual, not an exact share of the score.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(values - centre) / np.where(scale > 0, scale, 1.0)
    z = np.where(np.isfinite(z), z, 0.0)
    order = np.argsort(-z, kind="stable")
    out: list[Reason] = []
    for j in order[:top]:
        if z[j] < 2.0:
            break
        name = names[j]
        v = float(values[j])
        direction = "unusually high" if v > centre[j] else "unusually low"
        out.append(
            Reason(
                code=name,
                sentence=f"{_capital(describe(name))}: {_fmt_value(name, v)}, {direction} "
                f"(typical {_fmt_value(name, float(centre[j]))})",
                contribution=float(z[j]),
                value=v,
                source="outlier",
            )
        )
    return out


def merge_reasons(*groups: Sequence[Reason], top: int = 6) -> list[Reason]:
    """Rules first (they are stated policy), then model reasons, without repeats."""
    seen: set[str] = set()
    out: list[Reason] = []
    for group in groups:
        for r in group:
            if r.code in seen:
                continue
            seen.add(r.code)
            out.append(r)
    return out[:top]


def contributions_dict(
    names: Sequence[str], contributions: NDArray[np.float64], bias: float
) -> Mapping[str, float]:
    """Contributions as a name -> value mapping with the bias under ``"(base)"``."""
    d = {n: float(c) for n, c in zip(names, contributions, strict=True)}
    d["(base)"] = float(bias)
    return d
