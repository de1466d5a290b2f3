"""Claim features: pure functions of one claim and statistics fitted at training."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fraudlens.spec import Claim, RecordSpec

#: Household sizes above this share one norm bucket.
HOUSEHOLD_CAP = 6
#: Categories seen fewer times than this at training fold into "other".
MIN_CATEGORY_COUNT = 20
#: A category column with more distinct values than this is frequency-encoded, not one-hot.
MAX_ONE_HOT = 12

_DESCRIPTIONS = {
    "amount_log": "log of the claimed amount",
    "amount_ratio_program": "amount relative to the program's median amount",
    "amount_ratio_household": "amount relative to the median for the program and household size",
    "amount_to_income": "amount relative to declared monthly income",
    "income_log": "log of declared income",
    "hour": "hour of submission (UTC)",
    "weekday": "day of week of submission (0 = Monday)",
    "is_weekend": "submitted on a weekend",
    "is_night": "submitted between 22:00 and 06:00 UTC",
    "month": "month of submission",
}


class ClaimFeatures:
    """Claim features from a record spec, with norms fitted on training claims.

    Protected attributes, identity values and labels never enter. The same arithmetic serves a
    frame (:meth:`transform`) and one claim (:meth:`transform_claim`), so both give identical
    values.

    >>> import pandas as pd
    >>> from fraudlens.spec import RecordSpec
    >>> spec = RecordSpec.default()
    >>> X = pd.DataFrame({"program": ["housing"] * 3, "amount": [100.0, 200.0, 300.0],
    ...     "submitted_at": pd.to_datetime(["2025-01-01T10:00Z"] * 3), "household_size": [1.0, 1.0, 2.0],
    ...     "declared_income": [12000.0] * 3, "channel": ["online"] * 3, "region": ["north"] * 3})
    >>> f = ClaimFeatures(spec).fit(X)
    >>> float(f.transform(X)["amount_ratio_program"].iloc[2])
    1.5
    """

    def __init__(self, spec: RecordSpec) -> None:
        self.spec = spec
        self._category_indexes: dict[str, dict[Any, int]] = {}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> Self:
        s = self.spec
        program = frame[s.program.column].astype("string").fillna("")
        amount = frame[s.amount.column].astype("float64")
        self.global_median_ = float(np.nanmedian(amount)) or 1.0
        self.program_median_ = {
            str(k): float(v) for k, v in amount.groupby(program).median().items() if v > 0
        }
        self.household_median_: dict[str, float] = {}
        if "household_size" in s.numeric:
            bucket = _household_bucket(
                frame["household_size"].to_numpy(dtype=np.float64, na_value=np.nan)
            )
            keys = program + "|" + pd.Series(bucket, index=frame.index).astype("string")
            self.household_median_ = {
                str(k): float(v) for k, v in amount.groupby(keys).median().items() if v > 0
            }
        self.numeric_median_ = {
            c: float(np.nanmedian(frame[c].to_numpy(dtype=np.float64, na_value=np.nan)))
            if frame[c].notna().any()
            else 0.0
            for c in s.numeric
            if c in frame.columns
        }
        self.categories_: dict[str, list[str]] = {}
        self._category_indexes.clear()
        self.frequencies_: dict[str, dict[str, float]] = {}
        cat_cols = [s.program.column, *s.categorical]
        for c in cat_cols:
            values = frame[c].astype("string").fillna("(missing)") if c in frame.columns else None
            if values is None:
                continue
            counts = values.value_counts()
            if len(counts) <= MAX_ONE_HOT or c == s.program.column:
                keep = [
                    str(k)
                    for k, n in counts.items()
                    if n >= MIN_CATEGORY_COUNT or c == s.program.column
                ]
                self.categories_[c] = sorted(keep)
            else:
                self.frequencies_[c] = {str(k): float(n) / len(values) for k, n in counts.items()}
        self.feature_names_ = self._names()
        return self

    def _names(self) -> list[str]:
        s = self.spec
        names = ["amount_log", "amount_ratio_program"]
        if "household_size" in s.numeric:
            names.append("amount_ratio_household")
        if "declared_income" in s.numeric:
            names += ["amount_to_income", "income_log"]
        names += [c for c in s.numeric if c != "declared_income"]
        names += ["hour", "weekday", "is_weekend", "is_night", "month"]
        for c, cats in self.categories_.items():
            names += [f"{c}={v}" for v in cats]
        names += [f"{c}_frequency" for c in self.frequencies_]
        return names

    def describe(self, name: str) -> str:
        """A short human description of a feature, for reasons and documentation."""
        if name in _DESCRIPTIONS:
            return _DESCRIPTIONS[name]
        if "=" in name:
            col, val = name.split("=", 1)
            return f"{col.replace('_', ' ')} is {val}"
        if name.endswith("_frequency"):
            return f"how common the claim's {name[: -len('_frequency')].replace('_', ' ')} is"
        return name.replace("_", " ")

    # -- transforming ------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features for every row of a validated frame (columns in :attr:`feature_names_`)."""
        s = self.spec
        ts = frame[s.timestamp_column]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            ts = pd.to_datetime(ts, utc=True)
        cols: dict[str, NDArray[Any]] = {
            "__hour": ts.dt.hour.to_numpy(dtype=np.float64),
            "__weekday": ts.dt.day_of_week.to_numpy(dtype=np.float64),
            "__month": ts.dt.month.to_numpy(dtype=np.float64),
            s.amount.column: frame[s.amount.column].to_numpy(dtype=np.float64, na_value=np.nan),
        }
        for c in s.numeric:
            cols[c] = (
                frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
                if c in frame.columns
                else np.full(len(frame), np.nan)
            )
        for c in [s.program.column, *s.categorical]:
            cols[c] = (
                frame[c].astype("string").fillna("(missing)").to_numpy(dtype=object)
                if c in frame.columns
                else np.full(len(frame), "(missing)", dtype=object)
            )
        return pd.DataFrame(
            self._compute(cols, len(frame)), columns=self.feature_names_, index=frame.index
        )

    def transform_claim(self, claim: Claim) -> NDArray[np.float64]:
        """Features of one claim as a (1, n_features) array, equal to :meth:`transform`'s row."""
        return self.transform_claims([claim])

    def transform_claims(self, claims: Sequence[Claim]) -> NDArray[np.float64]:
        """Features of validated claims, one row each, equal to :meth:`transform`'s rows.

        The API's micro-batches use it: no pandas frame is built, and every row equals the
        one-claim result bit for bit. Up to :data:`_SMALL` claims are computed claim by claim
        (:meth:`_rows_of_few`), more in one vectorised pass.
        """
        if len(claims) <= _SMALL:
            return self._rows_of_few(claims)
        s = self.spec
        n = len(claims)
        stamps = [_utc(c.timestamp) for c in claims]
        cols: dict[str, NDArray[Any]] = {
            "__hour": np.array([t.hour for t in stamps], dtype=np.float64),
            "__weekday": np.array([t.weekday() for t in stamps], dtype=np.float64),
            "__month": np.array([t.month for t in stamps], dtype=np.float64),
            s.amount.column: np.array([c.amount for c in claims], dtype=np.float64),
        }
        for col in s.numeric:
            values = [c.numeric.get(col) for c in claims]
            cols[col] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        cols[s.program.column] = np.array(
            ["(missing)" if c.program is None else c.program for c in claims], dtype=object
        )
        for col in s.categorical:
            cats = [c.categorical.get(col) for c in claims]
            cols[col] = np.array(["(missing)" if v is None else v for v in cats], dtype=object)
        return self._compute(cols, n)

    def _rows_of_few(self, claims: Sequence[Claim]) -> NDArray[np.float64]:
        """:meth:`_compute`'s values for a few claims, in plain Python arithmetic.

        A dozen array calls on one-element arrays cost more than the values themselves; the
        operations here are the same IEEE operations in the same order (``+``, ``/`` and the
        comparisons round alike in Python and numpy; both logs are numpy's, on arrays, as
        there), so the rows are equal bit for bit (a test holds them to the vectorised pass).
        """
        s = self.spec
        n = len(claims)
        out = np.zeros((n, len(self.feature_names_)), dtype=np.float64)
        amounts = [float(c.amount) for c in claims]
        programs = ["(missing)" if c.program is None else c.program for c in claims]
        out[:, 0] = np.log1p(np.array(amounts, dtype=np.float64))
        household = "household_size" in s.numeric
        income = "declared_income" in s.numeric
        others = [c for c in s.numeric if c != "declared_income"]
        j0 = 2 + household
        if income:
            incomes = [_number(c.numeric.get("declared_income")) for c in claims]
            out[:, j0 + 1] = np.log1p(np.array(incomes, dtype=np.float64))
            fill = self.numeric_median_.get("declared_income", 0.0)
        pmed, gmed, hmed = self.program_median_, self.global_median_, self.household_median_
        one_hot = [(c, self._category_index(c), len(cats)) for c, cats in self.categories_.items()]
        for i, c in enumerate(claims):
            row = out[i]
            a, p = amounts[i], programs[i]
            prog_med = pmed.get(p, gmed)
            row[1] = a / prog_med
            if household:
                size = _number(c.numeric.get("household_size"))
                b = 1.0 if size != size or size < 1.0 else size  # np.fmax: NaN -> 1
                b = HOUSEHOLD_CAP if b > HOUSEHOLD_CAP else int(b)
                row[2] = a / hmed.get(f"{p}|{b}", prog_med)
            if income:
                v = incomes[i]
                v = fill if v != v else _FLOAT_MAX if v > _FLOAT_MAX else -_FLOAT_MAX if v < -_FLOAT_MAX else v
                row[j0] = _divide(a, v / 12.0 + 100.0)
            j = j0 + 2 * income
            for col in others:
                row[j] = _number(c.numeric.get(col))
                j += 1
            t = _utc(c.timestamp)
            hour, weekday = t.hour, t.weekday()
            row[j : j + 5] = (hour, weekday, weekday >= 5, hour >= 22 or hour < 6, t.month)
            j += 5
            for col, where, width in one_hot:
                value = programs[i] if col == s.program.column else c.categorical.get(col)
                k = where.get("(missing)" if value is None else value)
                if k is not None:
                    row[j + k] = 1.0
                j += width
            for col, freq in self.frequencies_.items():
                value = programs[i] if col == s.program.column else c.categorical.get(col)
                row[j] = freq.get("(missing)" if value is None else value, 0.0)
                j += 1
        return out

    def _compute(self, cols: Mapping[str, NDArray[Any]], n: int) -> NDArray[np.float64]:
        s = self.spec
        out = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        j = 0

        def put(values: NDArray[Any]) -> None:
            nonlocal j
            out[:, j] = values
            j += 1

        amount = cols[s.amount.column]
        program = cols[s.program.column]
        prog_med = _lookup(program, self.program_median_, self.global_median_)
        put(np.log1p(amount))
        put(amount / prog_med)
        if "household_size" in s.numeric:
            bucket = _household_bucket(cols["household_size"])
            if n <= _SMALL:  # np.char's set-up costs more than a few formatted strings
                keys = np.array(
                    [f"{p}|{b}" for p, b in zip(program.tolist(), bucket.tolist(), strict=True)],
                    dtype=object,
                )
            else:
                keys = np.char.add(np.char.add(program.astype(str), "|"), bucket.astype(str))
                keys = keys.astype(object)
            put(amount / _lookup(keys, self.household_median_, prog_med))
        if "declared_income" in s.numeric:
            income = cols["declared_income"]
            put(
                amount
                / (
                    np.nan_to_num(income, nan=self.numeric_median_.get("declared_income", 0.0))
                    / 12.0
                    + 100.0
                )
            )
            put(np.log1p(income))
        for c in s.numeric:
            if c != "declared_income":
                put(cols[c])
        hour = cols["__hour"]
        weekday = cols["__weekday"]
        put(hour)
        put(weekday)
        put((weekday >= 5).astype(np.float64))
        put(((hour >= 22) | (hour < 6)).astype(np.float64))
        put(cols["__month"])
        for c, cats in self.categories_.items():
            values = cols[c]
            if n <= _SMALL:  # one indicator column per category: set the ones row by row
                out[:, j : j + len(cats)] = 0.0
                where = self._category_index(c)
                for i, v in enumerate(values.tolist()):
                    k = where.get(v)
                    if k is not None:
                        out[i, j + k] = 1.0
                j += len(cats)
                continue
            for v in cats:
                put((values == v).astype(np.float64))
        for c, freq in self.frequencies_.items():
            put(_lookup(cols[c], freq, 0.0))
        return out

    def _category_index(self, column: str) -> dict[Any, int]:
        """Category -> its indicator's position among the column's indicators (made once)."""
        index = self._category_indexes.get(column)
        if index is None:
            index = {}
            for k, v in enumerate(self.categories_[column]):
                index.setdefault(v, k)  # ``values == v`` marks the first equal category only
            self._category_indexes[column] = index
        return index

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "global_median": self.global_median_,
            "program_median": self.program_median_,
            "household_median": self.household_median_,
            "numeric_median": self.numeric_median_,
            "categories": self.categories_,
            "frequencies": self.frequencies_,
            "feature_names": self.feature_names_,
        }

    @classmethod
    def from_dict(cls, spec: RecordSpec, data: Mapping[str, Any]) -> ClaimFeatures:
        f = cls(spec)
        f.global_median_ = float(data["global_median"])
        f.program_median_ = dict(data["program_median"])
        f.household_median_ = dict(data["household_median"])
        f.numeric_median_ = dict(data["numeric_median"])
        f.categories_ = {k: list(v) for k, v in data["categories"].items()}
        f.frequencies_ = {k: dict(v) for k, v in data["frequencies"].items()}
        f.feature_names_ = f._names()
        if f.feature_names_ != list(data["feature_names"]):
            raise ValueError(
                f"saved feature list does not match the spec: expected {data['feature_names']}, "
                f"got {f.feature_names_}"
            )
        return f

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1), "utf-8")

    @classmethod
    def load(cls, spec: RecordSpec, path: Path) -> ClaimFeatures:
        return cls.from_dict(spec, json.loads(path.read_text("utf-8")))


#: ``np.nan_to_num``'s value for +inf (and its negative for -inf).
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _divide(a: float, b: float) -> float:
    """``a / b`` as numpy divides (a zero ``b`` gives +-inf or NaN, not an error)."""
    if b != 0.0:
        return a / b
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def _number(v: float | None) -> float:
    """A numeric field's value as the vectorised pass reads it: missing is NaN."""
    return np.nan if v is None else float(v)


def _utc(ts: datetime) -> datetime:
    """``ts`` in UTC (a naive time is refused, as pandas refuses it)."""
    if ts.tzinfo is None:
        raise TypeError(f"expected a time zone-aware timestamp, got {ts!r}")
    return ts.astimezone(UTC)


def _household_bucket(size: NDArray[np.float64]) -> NDArray[np.int64]:
    """Household sizes as buckets 1..HOUSEHOLD_CAP (missing: 1; fmax drops NaN, keeps +-inf)."""
    return np.minimum(np.fmax(size, 1.0), HOUSEHOLD_CAP).astype(np.int64)


#: Up to this many keys, :func:`_lookup` uses plain dict lookups.
_SMALL = 256


def _lookup(
    keys: NDArray[Any], table: Mapping[str, float], default: float | NDArray[np.float64]
) -> NDArray[np.float64]:
    if len(keys) <= _SMALL:  # a claim or a micro-batch: a dict lookup each beats pandas' set-up
        if np.isscalar(default):
            return np.array([table.get(k, default) for k in keys], dtype=np.float64)
        fallback = cast(NDArray[np.float64], default).tolist()
        return np.array([table.get(k, d) for k, d in zip(keys, fallback, strict=True)], dtype=np.float64)
    # a copy: pandas may hand out a read-only view, and unseen keys are filled in below
    values = pd.Series(keys).map(table).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    missing = np.isnan(values)
    if missing.any():
        values[missing] = default if np.isscalar(default) else default[missing]  # type: ignore[index]
    return values
