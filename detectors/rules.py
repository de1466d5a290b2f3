"""Declarative red-flag rules: YAML conditions over claim features, each with a weight and a reason."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray

from detectors.base import ArrayLike, BaseDetector, check_is_fitted
from detectors.expressions import Expression, ExpressionError, compile_expression

__all__ = ["Rule", "RuleError", "RulesDetector", "load_rules", "parse_rules"]

_REQUIRED = ("id", "expression", "weight", "reason")

#: The packaged default rules.
DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")
#: Up to this many rows of a float64 array, :meth:`RulesDetector.score_samples` scores row by row
#: (the API's micro-batches): evaluating the rules vectorised costs about 180 us whatever the
#: number of rows (the six default rules), row by row about 7 us a row.
ROW_WISE_MAX = 24


class RuleError(ValueError):
    """Raised for a rule file or rule that cannot be used; the message names the rule id."""


@dataclass(frozen=True)
class Rule:
    """One red-flag rule.

    Attributes
    ----------
    id : str
        Stable identifier, used in decision logs and explanations.
    expression : Expression
        The compiled condition; the rule fires where it is known to be true.
    weight : float
        Added to the score of every row where the rule fires (> 0).
    reason : str
        A sentence for investigators; may interpolate features, e.g.
        ``"Amount is {amount_ratio_program:.1f}x the program median"``.
    reason_names : frozenset of str
        The feature names the reason interpolates.
    """

    id: str
    expression: Expression
    weight: float
    reason: str
    reason_names: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        """Every feature name the rule reads (condition and reason)."""
        return self.expression.names | self.reason_names

    def to_dict(self) -> dict[str, Any]:
        """The rule as its YAML mapping."""
        return {
            "id": self.id,
            "expression": self.expression.text,
            "weight": self.weight,
            "reason": self.reason,
        }

    def render_reason(self, x: Mapping[str, Any]) -> str:
        """The reason sentence with the feature values of record ``x``; missing ones read
        ``unknown``."""
        values = {name: _Formatted(x.get(name)) for name in self.reason_names}
        return self.reason.format_map(values)


class _Formatted:
    """A value for ``str.format`` that renders missing values as ``unknown``."""

    def __init__(self, value: Any) -> None:
        if isinstance(value, np.generic):
            value = value.item()
        self.value = value

    def __format__(self, spec: str) -> str:
        value = self.value
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)


def _reason_names(rule_id: str, reason: str) -> frozenset[str]:
    names: set[str] = set()
    try:
        fields = list(string.Formatter().parse(reason))
    except ValueError as exc:
        raise RuleError(f"rule {rule_id!r}: reason is not a valid format string: {exc}") from None
    for _, field, spec, conversion in fields:
        if field is None:
            continue
        if not field.isidentifier() or field.startswith("_"):
            raise RuleError(
                f"rule {rule_id!r}: reason placeholders must be plain feature names like "
                f"{{amount:.1f}}, got {{{field}}}"
            )
        if conversion is not None or (spec and "{" in spec):
            raise RuleError(
                f"rule {rule_id!r}: reason placeholder {{{field}}} must not nest or convert"
            )
        names.add(field)
    return frozenset(names)


def _parse_rule(raw: Any, position: int) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleError(
            f"rule #{position + 1}: expected a mapping with keys {list(_REQUIRED)}, got {type(raw).__name__}"
        )
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleError(f"rule #{position + 1}: expected a non-empty string 'id', got {rule_id!r}")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise RuleError(f"rule {rule_id!r}: missing keys {missing}; expected {list(_REQUIRED)}")
    unknown = sorted(set(raw) - set(_REQUIRED))
    if unknown:
        raise RuleError(f"rule {rule_id!r}: unknown keys {unknown}; expected {list(_REQUIRED)}")
    weight = raw["weight"]
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or weight <= 0
    ):
        raise RuleError(f"rule {rule_id!r}: weight must be a finite number > 0, got {weight!r}")
    reason = raw["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise RuleError(f"rule {rule_id!r}: expected a non-empty string 'reason', got {reason!r}")
    try:
        expression = compile_expression(raw["expression"])
    except ExpressionError as exc:
        raise RuleError(f"rule {rule_id!r}: {exc}") from None
    return Rule(rule_id, expression, float(weight), reason, _reason_names(rule_id, reason))


def parse_rules(raw: Any) -> list[Rule]:
    """Rules from already-loaded YAML: a list of rule mappings or ``{"rules": [...]}``.

    Parameters
    ----------
    raw : list of mapping, or mapping with key ``rules``
        Each rule has ``id``, ``expression``, ``weight`` and ``reason``.

    Returns
    -------
    list of Rule
        In the given order.

    Raises
    ------
    RuleError
        On a malformed rule, a duplicate id, or an expression outside the grammar.
    """
    if isinstance(raw, Mapping):
        if set(raw) != {"rules"}:
            raise RuleError(
                f"expected a mapping with the single key 'rules', got keys {sorted(raw)}"
            )
        raw = raw["rules"]
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"expected a non-empty list of rules, got {type(raw).__name__}")
    rules = [_parse_rule(item, i) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"rule {rule.id!r}: duplicate id")
        seen.add(rule.id)
    return rules


def load_rules(source: str | Path | None = None) -> list[Rule]:
    """Load rules from a YAML file, YAML text, or (``None``) the packaged default rules.

    Parameters
    ----------
    source : str or Path, optional
        A path to a ``.yaml`` / ``.yml`` file, or YAML text. ``None`` loads
        ``detectors/default_rules.yaml``.

    Returns
    -------
    list of Rule
    """
    if source is None:
        text = DEFAULT_RULES_PATH.read_text("utf-8")
        where = "default_rules.yaml"
    elif isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        if not path.is_file():
            raise RuleError(f"expected a rules file at {str(path)!r}, got no such file")
        text, where = path.read_text("utf-8"), str(path)
    else:
        text, where = source, "YAML text"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{where}: not valid YAML: {exc}") from None
    try:
        return parse_rules(raw)
    except RuleError as exc:
        raise RuleError(f"{where}: {exc}") from None


class RulesDetector(BaseDetector):
    """Scores claims by the red-flag rules they trip: the sum of the weights of fired rules.

    Higher means more anomalous (more, or heavier, red flags). Fitting learns nothing from the
    data: it compiles the rules and checks that every feature they read is a column of ``X``.

    Parameters
    ----------
    rules : str, Path, list of mapping, or None
        A YAML file path, YAML text, or a list of ``{id, expression, weight, reason}``
        mappings. ``None`` uses the packaged ``default_rules.yaml``.
    feature_names : list of str, optional
        Column names when ``fit`` gets a numpy array; a DataFrame's own names win.
    contamination : float
        PyOD compatibility only (``threshold_`` / ``labels_``).

    Examples
    --------
    >>> import pandas as pd
    >>> rules = [{"id": "big", "expression": "amount > 1000", "weight": 2,
    ...           "reason": "Amount {amount:.0f} is over 1000"}]
    >>> X = pd.DataFrame({"amount": [10.0, 5000.0]})
    >>> det = RulesDetector(rules).fit(X)
    >>> det.score_samples(X).tolist()
    [0.0, 2.0]
    >>> det.reasons({"amount": 5000.0})
    ['Amount 5000 is over 1000']
    """

    #: Compiled rules are rebuilt from the ``rules`` parameter on load, not saved.
    _unsaved_attrs = ("rules_",)
    #: :meth:`_read_columns`, found on first use after a fit or load.
    _read: list[tuple[str, int]] | None = None

    def __init__(
        self,
        rules: str | Path | Sequence[Mapping[str, Any]] | None = None,
        feature_names: Sequence[str] | None = None,
        contamination: float = 0.1,
    ) -> None:
        self.rules = rules
        self.feature_names = feature_names
        self.contamination = contamination

    # -- fitting -----------------------------------------------------------------------------
    def _compile_rules(self) -> list[Rule]:
        if self.rules is None or isinstance(self.rules, str | Path):
            return load_rules(self.rules)
        return parse_rules(list(self.rules))

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Compile the rules and check their feature names against the columns of ``X``.

        Parameters
        ----------
        X : DataFrame or ndarray
            Claim features; a numpy array needs ``feature_names``.
        y : ignored

        Returns
        -------
        self
        """
        self._check_contamination()
        rules = self._compile_rules()
        if isinstance(X, pd.DataFrame):
            columns = [str(c) for c in X.columns]
        elif self.feature_names is not None:
            columns = [str(c) for c in self.feature_names]
            arr = np.asarray(X)
            if arr.ndim != 2 or arr.shape[1] != len(columns):
                raise ValueError(
                    f"X must have {len(columns)} columns (feature_names), got shape {arr.shape}"
                )
        else:
            raise ValueError(
                "RulesDetector needs named features: expected a DataFrame or feature_names, "
                f"got {type(X).__name__} without names"
            )
        available = set(columns)
        for rule in rules:
            unknown = sorted(rule.names - available)
            if unknown:
                raise RuleError(
                    f"rule {rule.id!r}: unknown feature {unknown[0]!r}"
                    + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
                    + f"; expected one of {sorted(available)}"
                )
        self.rules_ = rules
        self._read = None  # the columns the rules read: found again on first use
        self.rule_ids_ = [rule.id for rule in rules]
        self.weights_ = np.array([rule.weight for rule in rules], dtype=np.float64)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        self._set_training_outputs(self.score_samples(X))
        return self

    def _restore(self) -> None:
        """Recompile the rules after :func:`detectors.load` (they are saved as their YAML form)."""
        if hasattr(self, "rule_ids_"):
            self.rules_ = self._compile_rules()
            self._read = None

    # -- scoring -----------------------------------------------------------------------------
    def _columns(self, X: ArrayLike) -> tuple[dict[str, NDArray[Any]], int]:
        check_is_fitted(self)
        read = self._read_columns()
        if isinstance(X, pd.DataFrame):
            missing = sorted(c for c, _ in read if c not in X.columns)
            if missing:
                raise ValueError(f"X is missing columns the rules read: {missing}")
            return {c: X[c].to_numpy() for c, _ in read}, len(X)
        arr = np.asarray(X)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        self._check_width(arr)
        return {c: arr[:, i] for c, i in read}, arr.shape[0]

    def _read_columns(self) -> list[tuple[str, int]]:
        """(name, column) of each feature the rules read, in the fitted column order (found
        once after a fit or load)."""
        read = self._read
        if read is None:
            wanted = set().union(*(rule.expression.names for rule in self.rules_))
            names = (str(c) for c in self.feature_names_in_)
            read = self._read = [(name, i) for i, name in enumerate(names) if name in wanted]
        return read

    def _check_width(self, arr: NDArray[Any]) -> None:
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have {self.n_features_in_} columns in the fitted order, got shape {arr.shape}"
            )

    def fired_matrix(self, X: ArrayLike) -> NDArray[np.bool_]:
        """Which rules fire on which rows.

        Returns
        -------
        ndarray of bool, shape (n_rows, n_rules)
            Column ``j`` is rule ``rule_ids_[j]``.
        """
        columns, n_rows = self._columns(X)
        out = np.zeros((n_rows, len(self.rules_)), dtype=bool)
        for j, rule in enumerate(self.rules_):
            out[:, j] = rule.expression.evaluate(columns, n_rows)
        return out

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Sum of the weights of the rules each row fires; higher means more anomalous.

        Each row's weights are added one by one in rule order, as :meth:`score_one` adds
        them, so a row scores the same bits alone or among others (a matrix product would add
        them in another order: with weights such as 0.1 and 0.7 the last bit can differ). A
        float64 array of at most :data:`ROW_WISE_MAX` rows is scored row by row.
        """
        if type(X) is np.ndarray and X.ndim == 2 and X.dtype == np.float64 and len(X) <= ROW_WISE_MAX:
            check_is_fitted(self)
            self._check_width(X)
            return np.array([self._row_score(row) for row in X.tolist()], dtype=np.float64)
        fired = self.fired_matrix(X)
        total = np.zeros(fired.shape[0])
        for j, weight in enumerate(self.weights_.tolist()):
            total += fired[:, j] * weight  # + 0.0 where it does not fire: the same bits
        return total

    def fired(self, X: ArrayLike) -> list[list[str]]:
        """The ids of the rules each row fires, in rule order."""
        matrix = self.fired_matrix(X)
        return [[self.rule_ids_[j] for j in np.flatnonzero(row)] for row in matrix]

    def _record(self, x: Mapping[str, Any] | pd.Series | NDArray[Any]) -> Mapping[str, Any]:
        if isinstance(x, pd.Series):
            return x.to_dict()
        if isinstance(x, Mapping):
            return x
        arr = np.asarray(x).ravel()
        if arr.shape[0] != self.n_features_in_:
            raise ValueError(f"x must have {self.n_features_in_} values, got {arr.shape[0]}")
        return dict(zip((str(c) for c in self.feature_names_in_), arr.tolist(), strict=True))

    def score_one(self, x: Mapping[str, Any] | pd.Series | NDArray[Any]) -> float:
        """The score of one record (a mapping of feature name to value), without numpy
        overhead."""
        check_is_fitted(self)
        if type(x) is np.ndarray and x.ndim == 1 and x.dtype == np.float64 and len(x) == self.n_features_in_:
            return self._row_score(x.tolist())
        return self._score_record(self._record(x))

    def _score_record(self, record: Mapping[str, Any]) -> float:
        total = 0.0  # added one by one in rule order (not sum(): Python 3.12 compensates)
        for rule in self.rules_:
            if rule.expression.evaluate_one(record):
                total += rule.weight
        return float(total)

    def _row_score(self, row: list[Any]) -> float:
        """The score of one row of values in the fitted column order; only the columns the
        rules read are looked at."""
        return self._score_record({name: row[i] for name, i in self._read_columns()})

    def reasons(self, x: Mapping[str, Any] | pd.Series | NDArray[Any]) -> list[str]:
        """The reason sentences of the rules one record fires, with its feature values.

        Parameters
        ----------
        x : mapping, Series, or 1-d array in the fitted column order
            One record's features.

        Returns
        -------
        list of str
            One sentence per fired rule, in rule order.
        """
        check_is_fitted(self)
        record = self._record(x)
        return [r.render_reason(record) for r in self.rules_ if r.expression.evaluate_one(record)]
