"""The record spec: which columns a claim has, how each is checked, and what a rejection says."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray

IDENTITY_KINDS = (
    "national_id",
    "name",
    "dob",
    "phone",
    "email",
    "address",
    "bank_account",
    "device_id",
    "ip",
)

Section = Literal["identity", "numeric", "categorical", "protected", "label"]


class SpecError(ValueError):
    """The spec file itself is invalid."""


class FileLevelError(ValueError):
    """A whole file cannot be read against the spec (e.g. a required column is missing).

    Nothing in the file is scored; ``missing`` names the absent columns.
    """

    def __init__(self, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field of one record: what was expected and what arrived (identity masked)."""

    field: str
    expected: str
    got: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected, "got": self.got}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not accepted, with every bad field.

    ``row`` is the 0-based position in the input (file row or list index); ``claim_id``
    is the record's id when one could be read.
    """

    claim_id: str | None
    row: int | None
    errors: tuple[FieldError, ...]

    @property
    def reason(self) -> str:
        return "; ".join(f"{e.field}: expected {e.expected}, got {e.got}" for e in self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "row": self.row,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """One validated claim. Identity values are raw here and live only in memory."""

    claim_id: str
    timestamp: datetime
    program: str
    amount: float
    identity: Mapping[str, str | None]
    numeric: Mapping[str, float | None]
    categorical: Mapping[str, str | None]
    protected: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, Any] = field(default_factory=dict)


# --- field declarations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityField:
    column: str
    kind: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class NumericField:
    column: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    integer: bool = False

    @property
    def expected(self) -> str:
        what = "an integer" if self.integer else "a number"
        if self.min is not None and self.max is not None:
            return f"{what} in [{_fmt(self.min)}, {_fmt(self.max)}]"
        if self.min is not None:
            return f"{what} >= {_fmt(self.min)}"
        if self.max is not None:
            return f"{what} <= {_fmt(self.max)}"
        return what


@dataclass(frozen=True, slots=True)
class CategoricalField:
    column: str
    required: bool = True
    values: tuple[str, ...] | None = None

    @property
    def expected(self) -> str:
        if self.values:
            return "one of " + ", ".join(self.values)
        return "a non-empty text value"


@dataclass(frozen=True, slots=True)
class LabelField:
    column: str
    kind: Literal["binary", "category"] = "category"


def _categorical(column: str, f: Any, required_default: bool) -> CategoricalField:
    f = f or {}
    values = f.get("values")
    return CategoricalField(
        column=column,
        required=bool(f.get("required", required_default)),
        values=tuple(str(v) for v in values) if values else None,
    )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# --- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordSpec:
    """A declared record layout. Load one with :meth:`load` or :meth:`default`.

    >>> spec = RecordSpec.default()
    >>> spec.id_column, spec.timestamp_column
    ('claim_id', 'submitted_at')
    >>> "citizenship" in spec.protected and "citizenship" not in spec.feature_columns
    True
    """

    name: str
    version: int
    id_column: str
    timestamp_column: str
    program: CategoricalField
    amount: NumericField
    identity: dict[str, IdentityField]
    numeric: dict[str, NumericField]
    categorical: dict[str, CategoricalField]
    protected: dict[str, CategoricalField]
    labels: dict[str, LabelField]
    unknown_fields: Literal["ignore", "reject"] = "ignore"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def default(cls) -> RecordSpec:
        """The spec of fraudlens' synthetic claims (shipped with the package)."""
        text = resources.files("fraudlens").joinpath("specs/claims.yaml").read_text("utf-8")
        return cls.from_dict(yaml.safe_load(text))

    @classmethod
    def load(cls, path: str | Path) -> RecordSpec:
        try:
            data = yaml.safe_load(Path(path).read_text("utf-8"))
        except yaml.YAMLError as exc:
            raise SpecError(f"spec {path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<spec>") -> RecordSpec:
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
        try:
            program = data["program"]
            amount = data["amount"]
            spec = cls(
                name=str(data.get("name", "claims")),
                version=int(data.get("version", 1)),
                id_column=str(data["id"]),
                timestamp_column=str(data["timestamp"]),
                program=CategoricalField(
                    column=str(program["column"]),
                    values=tuple(str(v) for v in program["values"]) if program.get("values") else None,
                ),
                amount=NumericField(
                    column=str(amount["column"]), min=amount.get("min"), max=amount.get("max")
                ),
                identity={
                    col: IdentityField(col, str(f["kind"]), bool(f.get("required", True)))
                    for col, f in (data.get("identity") or {}).items()
                },
                numeric={
                    col: NumericField(
                        col,
                        required=bool(f.get("required", True)),
                        min=f.get("min"),
                        max=f.get("max"),
                        integer=bool(f.get("integer", False)),
                    )
                    for col, f in (data.get("numeric") or {}).items()
                },
                categorical={
                    col: _categorical(col, f, required_default=True)
                    for col, f in (data.get("categorical") or {}).items()
                },
                protected={
                    col: _categorical(col, f, required_default=False)
                    for col, f in (data.get("protected") or {}).items()
                },
                labels={
                    col: LabelField(col, (f or {}).get("kind", "category"))
                    for col, f in (data.get("labels") or {}).items()
                },
                unknown_fields=data.get("unknown_fields", "ignore"),
                raw=data,
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"{source}: missing or malformed entry {exc}") from exc
        spec._check(source)
        return spec

    def _check(self, source: str) -> None:
        for f in self.identity.values():
            if f.kind not in IDENTITY_KINDS:
                raise SpecError(
                    f"{source}: identity column {f.column!r} has kind {f.kind!r}; "
                    f"expected one of {', '.join(IDENTITY_KINDS)}"
                )
        if self.unknown_fields not in ("ignore", "reject"):
            raise SpecError(
                f"{source}: unknown_fields must be 'ignore' or 'reject', got {self.unknown_fields!r}"
            )
        seen: dict[str, str] = {}
        for section, cols in self._sections():
            for col in cols:
                if col in seen:
                    raise SpecError(
                        f"{source}: column {col!r} is declared twice ({seen[col]} and {section})"
                    )
                seen[col] = section

    def _sections(self) -> Iterable[tuple[str, list[str]]]:
        yield "core", [self.id_column, self.timestamp_column, self.program.column, self.amount.column]
        yield "identity", list(self.identity)
        yield "numeric", list(self.numeric)
        yield "categorical", list(self.categorical)
        yield "protected", list(self.protected)
        yield "labels", list(self.labels)

    # -- derived views -----------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return [c for _, cols in self._sections() for c in cols]

    @property
    def required_columns(self) -> list[str]:
        core = [self.id_column, self.timestamp_column, self.program.column, self.amount.column]
        return (
            core
            + [c for c, f in self.identity.items() if f.required]
            + [c for c, f in self.numeric.items() if f.required]
            + [c for c, f in self.categorical.items() if f.required]
        )

    @property
    def feature_columns(self) -> list[str]:
        """Columns a model may see (never identity, protected or label columns)."""
        return [self.program.column, self.amount.column, *self.numeric, *self.categorical]

    @property
    def identity_kinds(self) -> dict[str, str]:
        return {c: f.kind for c, f in self.identity.items()}

    @property
    def hash(self) -> str:
        """sha256 of the canonical spec, recorded in every model bundle."""
        canon = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(canon).hexdigest()

    # -- one record ------------------------------------------------------------------------
    def validate_record(self, record: Mapping[str, Any], row: int | None = None) -> Claim | Rejection:
        """Check one record (a dict from the API or a stream); a Claim or a Rejection."""
        errors: list[FieldError] = []
        claim_id = _check_id(record.get(self.id_column), self.id_column, errors)
        ts = _check_timestamp(record.get(self.timestamp_column), self.timestamp_column, errors)
        program = _check_category(record.get(self.program.column), self.program, errors)
        amount = _check_number(record.get(self.amount.column), self.amount, errors)
        identity = {
            c: _check_identity(record.get(c), f, errors) for c, f in self.identity.items()
        }
        numeric = {c: _check_number(record.get(c), f, errors) for c, f in self.numeric.items()}
        categorical = {
            c: _check_category(record.get(c), f, errors) for c, f in self.categorical.items()
        }
        protected = {c: _check_category(record.get(c), f, errors) for c, f in self.protected.items()}
        labels = {c: _check_label(record.get(c), f, errors) for c, f in self.labels.items()}
        if self.unknown_fields == "reject":
            known = set(self.columns)
            for key in record:
                if key not in known:
                    errors.append(FieldError(_printable(str(key)), "no such field in the record spec", "a value"))
        if errors:
            return Rejection(claim_id, row, tuple(errors))
        assert claim_id is not None and ts is not None and program is not None and amount is not None
        return Claim(
            claim_id=claim_id,
            timestamp=ts,
            program=program,
            amount=amount,
            identity=identity,
            numeric=numeric,
            categorical=categorical,
            protected=protected,
            labels=labels,
        )

    # -- a whole frame -----------------------------------------------------------------------
    def validate_frame(self, frame: pd.DataFrame) -> Validated:
        """Check every row of a frame.

        Raises :class:`FileLevelError` when a required column is missing (nothing is scored).
        Otherwise returns the accepted rows, typed and in input order, and one
        :class:`Rejection` per bad row; ``len(accepted) + len(rejections) == len(frame)``.
        A repeated id rejects the later row.
        """
        missing = [c for c in self.required_columns if c not in frame.columns]
        if missing:
            raise FileLevelError(
                f"the input lacks required column(s) {', '.join(missing)} "
                f"(record spec {self.name!r}); nothing was scored",
                missing=missing,
            )
        n = len(frame)
        bad = np.zeros(n, dtype=bool)
        out: dict[str, pd.Series] = {}

        ids = frame[self.id_column]
        id_str = _as_text(ids, bad, takes=_id_like)
        bad |= id_str.isna().to_numpy() | (id_str == "").fillna(True).to_numpy()
        out[self.id_column] = id_str

        ts = _parse_timestamps(frame[self.timestamp_column])
        bad |= ts.isna().to_numpy()
        out[self.timestamp_column] = ts

        out[self.program.column] = _vec_category(frame[self.program.column], self.program, bad)
        out[self.amount.column] = _vec_number(frame[self.amount.column], self.amount, bad)
        for c, f in self.identity.items():
            col = frame[c] if c in frame.columns else pd.Series(pd.NA, index=frame.index)
            out[c] = _vec_identity(col, f, bad)
        for c, nf in self.numeric.items():
            col = frame[c] if c in frame.columns else pd.Series(np.nan, index=frame.index)
            out[c] = _vec_number(col, nf, bad)
        for group in (self.categorical, self.protected):
            for c, cf in group.items():
                col = frame[c] if c in frame.columns else pd.Series(pd.NA, index=frame.index)
                out[c] = _vec_category(col, cf, bad)
        for c, lf in self.labels.items():
            if c in frame.columns:
                out[c] = _vec_label(frame[c], lf, bad)
        if self.unknown_fields == "reject":
            unknown = [c for c in frame.columns if c not in set(self.columns)]
            if unknown:
                present = frame[unknown].notna().any(axis=1).to_numpy()
                bad |= present

        typed = pd.DataFrame(out)
        typed.index = pd.RangeIndex(n)
        # Duplicates: the first well-formed occurrence wins, later rows are rejected.
        dup = np.zeros(n, dtype=bool)
        good_ids = typed.loc[~bad, self.id_column]
        dup[good_ids.index[good_ids.duplicated(keep="first").to_numpy()]] = True

        rejections: list[Rejection] = []
        records = frame.reset_index(drop=True)
        for i in (int(k) for k in np.flatnonzero(bad | dup)):
            if dup[i] and not bad[i]:
                cid = str(typed.at[i, self.id_column])
                rejections.append(
                    Rejection(
                        cid,
                        i,
                        (FieldError(self.id_column, "an id not seen earlier in this input", f"duplicate {cid!r}"),),
                    )
                )
                continue
            result = self.validate_record(_row_dict(records, i), row=i)
            if isinstance(result, Rejection):
                rejections.append(result)
            else:  # the vectorised check was stricter than the record check: trust the record
                bad[i] = False
        accepted = typed.loc[~(bad | dup)].reset_index(drop=True)
        return Validated(accepted=accepted, rejections=rejections, n_in=n)

    def claim_from_row(self, row: Mapping[str, Any]) -> Claim:
        """Build a :class:`Claim` from one row of an accepted (already validated) frame."""
        result = self.validate_record(row)
        if isinstance(result, Rejection):
            raise ValueError(f"row of an accepted frame failed validation: {result.reason}")
        return result

    def with_core_names(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its id, timestamp, program and amount columns under fraudlens' own
        names (``claim_id``, ``submitted_at``, ``program``, ``amount``), the names the identity
        graph reads a claims frame by; the frame itself when the spec uses those names.

        >>> spec = RecordSpec.from_dict({**RecordSpec.default().raw, "id": "case_ref"})
        >>> spec.with_core_names(pd.DataFrame(columns=["case_ref", "amount"])).columns.tolist()
        ['claim_id', 'amount']
        """
        core = {
            self.id_column: "claim_id",
            self.timestamp_column: "submitted_at",
            self.program.column: "program",
            self.amount.column: "amount",
        }
        rename = {mine: ours for mine, ours in core.items() if mine != ours}
        if not rename:
            return frame
        taken = [ours for ours in rename.values() if ours in frame.columns and ours not in rename]
        if taken:
            raise SpecError(
                f"columns {taken} hold other fields of this spec; expected them free for the "
                f"core fields named {sorted(rename)}: rename them in the spec"
            )
        return frame.rename(columns=rename)

    def record_from_claim(self, claim: Claim) -> dict[str, Any]:
        """The flat record of a claim (the inverse of :meth:`validate_record`)."""
        rec: dict[str, Any] = {
            self.id_column: claim.claim_id,
            self.timestamp_column: claim.timestamp.isoformat(),
            self.program.column: claim.program,
            self.amount.column: claim.amount,
        }
        for part in (claim.identity, claim.numeric, claim.categorical, claim.protected, claim.labels):
            rec.update(part)
        return rec


@dataclass(frozen=True)
class Validated:
    """The outcome of validating a frame: accepted rows (typed) and rejections."""

    accepted: pd.DataFrame
    rejections: list[Rejection]
    n_in: int

    def __post_init__(self) -> None:
        if len(self.accepted) + len(self.rejections) != self.n_in:
            raise AssertionError(
                f"records lost: {self.n_in} in, {len(self.accepted)} accepted + "
                f"{len(self.rejections)} rejected"
            )

    def accepted_rows(self) -> NDArray[np.int64]:
        """The input row number of each accepted row, in order (accepted rows keep the input's
        order)."""
        rejected = {r.row for r in self.rejections}
        return np.array([i for i in range(self.n_in) if i not in rejected], dtype=np.int64)

    def rejections_frame(self) -> pd.DataFrame:
        """One row per rejection, for a dead-letter file."""
        return pd.DataFrame(
            {
                "row": [r.row for r in self.rejections],
                "claim_id": [r.claim_id for r in self.rejections],
                "reason": [r.reason for r in self.rejections],
                "errors": [json.dumps([e.as_dict() for e in r.errors]) for r in self.rejections],
            }
        )


def read_claims(path: str | Path, spec: RecordSpec) -> pd.DataFrame:
    """Read a CSV or Parquet claims file; CSV columns are read as text so ids keep leading zeros."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    raise FileLevelError(f"{p}: expected a .csv or .parquet file, got suffix {p.suffix!r}")


# --- scalar checks (one record) --------------------------------------------------------------


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() == ""


def unicode_ok(text: str) -> bool:
    """Whether ``text`` is Unicode text that UTF-8 can hold: no unpaired surrogate, which a JSON
    escape (a lone ``\\ud800``) or a Python string can carry, and no database, file or JSON
    answer can store.

    >>> unicode_ok("Zoë"), unicode_ok("x" + chr(0xD800))
    (True, False)
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """``text`` with each unpaired surrogate written as its escape (a rejected id, to name it)."""
    return text if unicode_ok(text) else text.encode("utf-8", "backslashreplace").decode("ascii")


#: What a text field expects when it got an unpaired surrogate.
_UNICODE = "without an unpaired surrogate"


def _text_of(v: Any) -> str | None:
    """``str(v)``, or None for a value nested too deep to write (JSON allows a list in a list
    a thousand levels down; ``str`` of it raises RecursionError)."""
    try:
        return str(v)
    except RecursionError:
        return None


def _show(v: Any) -> str:
    if _missing(v):
        return "nothing"
    text = repr(v) if isinstance(v, str) else _text_of(v)
    if text is None:
        return f"a {type(v).__name__} nested too deep to show"
    return text if len(text) <= 60 else text[:57] + "..."


def mask_value(v: Any) -> str:
    """How an identity value appears in an error: its type and length, never its content."""
    if _missing(v):
        return "nothing"
    text = _text_of(v)
    if text is None:
        return f"a {type(v).__name__} nested too deep (masked)"
    return f"a {type(v).__name__} of length {len(text)} (masked)"


# Each check first takes the common case (a text or a number that passes) in a few operations;
# anything else goes the long way, which decides every other case as before.


def _check_id(v: Any, column: str, errors: list[FieldError]) -> str | None:
    if type(v) is str and (s := v.strip()) and (s.isascii() or unicode_ok(s)):
        return s
    if _missing(v) or not _id_like(v):
        errors.append(FieldError(column, "a non-empty text id", _show(v)))
        return None if _missing(v) or (text := _text_of(v)) is None else _printable(text)
    s = str(v).strip()
    if not unicode_ok(s):
        errors.append(FieldError(column, f"a text id {_UNICODE}", _show(v)))
        return _printable(s)  # the rejection names the claim by it
    return s


#: Plain ISO 8601 date-times (what APIs send): parsed by the standard library, which gives the
#: same instant and zone as pandas for these; anything else goes through pandas.
_PLAIN_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?", re.ASCII
)


def _check_timestamp(v: Any, column: str, errors: list[FieldError]) -> datetime | None:
    if _missing(v):
        errors.append(FieldError(column, "an ISO 8601 date-time", "nothing"))
        return None
    if isinstance(v, str) and _PLAIN_ISO.fullmatch(v.strip()):
        try:
            plain = datetime.fromisoformat(v.strip())
            return plain.replace(tzinfo=UTC) if plain.tzinfo is None else plain.astimezone(UTC)
        except (ValueError, OverflowError):  # e.g. 2025-02-30: pandas decides, below
            pass
    try:
        if isinstance(v, datetime):
            ts = pd.Timestamp(v)
        elif isinstance(v, str):
            ts = pd.Timestamp(v.strip())
        else:
            raise ValueError
        ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
        if ts is pd.NaT:
            raise ValueError
        return ts.to_pydatetime()  # raises for a year past 9999 in UTC
    except (ValueError, TypeError, OverflowError):
        errors.append(FieldError(column, "an ISO 8601 date-time", _show(v)))
        return None


def _to_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        if isinstance(v, int | float | np.integer | np.floating):
            return float(v)
        if isinstance(v, str):
            return float(v.strip())
    except (ValueError, OverflowError):  # OverflowError: an integer beyond any float
        return None
    return None


def _check_number(v: Any, f: NumericField, errors: list[FieldError]) -> float | None:
    if type(v) is float and (
        math.isfinite(v)
        and (not f.integer or v.is_integer())
        and (f.min is None or v >= f.min)
        and (f.max is None or v <= f.max)
    ):
        return v
    if _missing(v):
        if f.required:
            errors.append(FieldError(f.column, f.expected, "nothing"))
        return None
    x = _to_float(v)
    ok = x is not None and math.isfinite(x)
    if ok and f.integer and not float(x).is_integer():  # type: ignore[arg-type]
        ok = False
    if ok and f.min is not None and x < f.min:  # type: ignore[operator]
        ok = False
    if ok and f.max is not None and x > f.max:  # type: ignore[operator]
        ok = False
    if not ok:
        errors.append(FieldError(f.column, f.expected, _show(v)))
        return None
    return x


def _check_category(v: Any, f: CategoricalField, errors: list[FieldError]) -> str | None:
    if type(v) is str and (s := v.strip()) and (s in f.values if f.values else s.isascii() or unicode_ok(s)):
        return s
    if _missing(v):
        if f.required:
            errors.append(FieldError(f.column, f.expected, "nothing"))
        return None
    if not _text_like(v):
        errors.append(FieldError(f.column, f.expected, _show(v)))
        return None
    s = str(v).strip()
    if (f.values and s not in f.values) or not unicode_ok(s):
        errors.append(FieldError(f.column, f.expected if f.values else f"{f.expected} {_UNICODE}", _show(v)))
        return None
    return s


def _check_identity(v: Any, f: IdentityField, errors: list[FieldError]) -> str | None:
    if type(v) is str and (s := v.strip()) and (s.isascii() or unicode_ok(s)):
        return s
    if _missing(v):
        if f.required:
            errors.append(FieldError(f.column, f"a {f.kind} value", "nothing"))
        return None
    if not _text_like(v):
        errors.append(FieldError(f.column, f"a {f.kind} value as text", mask_value(v)))
        return None
    s = str(v).strip()
    if not unicode_ok(s):
        errors.append(FieldError(f.column, f"a {f.kind} value {_UNICODE}", mask_value(v)))
        return None
    return s


def _check_label(v: Any, f: LabelField, errors: list[FieldError]) -> Any:
    if _missing(v):
        return None
    if f.kind == "binary":
        x = _to_float(v)
        if x not in (0.0, 1.0):
            errors.append(FieldError(f.column, "0 or 1", _show(v)))
            return None
        return int(x)  # type: ignore[arg-type]
    text = _text_of(v)
    if text is None or not unicode_ok(text):
        errors.append(FieldError(f.column, f"text {_UNICODE}", _show(v)))
        return None
    return text


# --- vectorised checks (a frame); each marks rows that the scalar check would reject --------


def _parse_timestamps(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return col.dt.tz_localize("UTC")
    text = _as_text(col, np.zeros(len(col), dtype=bool))  # a bad text is no date-time: NaT
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


def _vec_number(col: pd.Series, f: NumericField, bad: np.ndarray) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype):
        x = pd.Series(np.nan, index=col.index)
        present = col.notna().to_numpy()
    else:
        if pd.api.types.is_numeric_dtype(col.dtype):
            x = col.astype("float64")
            present = col.notna().to_numpy()
        else:
            text = _as_text(col, bad)
            present = (text.notna() & (text != "")).fillna(False).to_numpy()
            x = pd.to_numeric(text, errors="coerce").astype("float64")
    v = x.to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = present & ~np.isfinite(v)
    with np.errstate(invalid="ignore"):
        if f.integer:
            wrong |= present & np.isfinite(v) & (np.floor(v) != v)
        if f.min is not None:
            wrong |= present & (v < f.min)
        if f.max is not None:
            wrong |= present & (v > f.max)
    if f.required:
        wrong |= ~present
    bad |= wrong
    return pd.Series(np.where(present & ~wrong, v, np.nan), index=col.index, dtype="float64")


def _vec_category(col: pd.Series, f: CategoricalField, bad: np.ndarray) -> pd.Series:
    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        present = col.notna().to_numpy()
        bad |= present
        text = pd.Series(pd.NA, index=col.index, dtype="string")
    else:
        text = _as_text(col, bad, takes=_text_like)
    present = (text.notna() & (text != "")).fillna(False).to_numpy()
    wrong = np.zeros(len(col), dtype=bool)
    if f.values:
        wrong |= present & ~text.isin(list(f.values)).fillna(False).to_numpy()
    if f.required:
        wrong |= ~present
    bad |= wrong
    return text.where(present, pd.NA)


def _vec_identity(col: pd.Series, f: IdentityField, bad: np.ndarray) -> pd.Series:
    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        bad |= col.notna().to_numpy()
        text = pd.Series(pd.NA, index=col.index, dtype="string")
    else:
        text = _as_text(col, bad, takes=_text_like)
    present = (text.notna() & (text != "")).fillna(False).to_numpy()
    if f.required:
        bad |= ~present
    return text.where(present, pd.NA)


def _vec_label(col: pd.Series, f: LabelField, bad: np.ndarray) -> pd.Series:
    if f.kind == "binary":
        text = _as_text(col, bad)
        present = (text.notna() & (text != "")).fillna(False).to_numpy()
        x = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = present & ~np.isin(x, [0.0, 1.0])
        bad |= wrong
        # a wrong value (1.5) is read as missing: Int64 cannot hold it (its row is rejected)
        return pd.Series(np.where(wrong, np.nan, x), index=col.index).astype("Int64")
    return _as_text(col, bad, strip=False)  # a text it marks bad reads as missing


def _id_like(v: Any) -> bool:
    """A value taken as an id (as its text), in a record and in a frame."""
    return not isinstance(v, bool | float | dict | list)


def _text_like(v: Any) -> bool:
    """A value a category or an identity field takes (as its text), in a record and in a frame."""
    return isinstance(v, str | int | np.integer) and not isinstance(v, bool)


def _as_text(
    col: pd.Series, bad: np.ndarray, strip: bool = True, takes: Callable[[Any], bool] | None = None
) -> pd.Series:
    """``col`` as pandas text (stripped), marking bad the rows the record check would reject
    for the value's type or text, each read as missing:

    - in a column of Python objects (a frame made in Python, a Parquet list column), a value
      ``takes`` refuses (a list where text is expected), which ``astype`` would turn into text;
    - a value that is not Unicode text (an unpaired surrogate), which pandas' text columns
      cannot hold.
    """
    if takes is not None and col.dtype == object:
        refused = np.fromiter((not _missing(v) and not takes(v) for v in col), dtype=bool, count=len(col))
        if refused.any():
            bad |= refused
            col = col.where(~refused, None)
    try:
        text = col.astype("string")
    except UnicodeEncodeError:
        wrong = np.fromiter((isinstance(v, str) and not unicode_ok(v) for v in col), dtype=bool, count=len(col))
        bad |= wrong
        text = col.where(~wrong, None).astype("string")
    return text.str.strip() if strip else text


def _row_dict(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    row = frame.iloc[i]
    return {k: (None if _missing(v) else v) for k, v in row.items()}
