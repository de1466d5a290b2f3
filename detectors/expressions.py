"""A safe expression grammar over feature names, compiled to vectorised and one-row evaluators.

Red-flag rules are written as small expressions such as
``amount_ratio_program > 5 and household_size <= 1`` or ``program in ["snap", "tanf"]``.
The text is parsed with :mod:`ast` and every node is checked against a whitelist, then turned
into a tree of small evaluator objects; the string is never passed to ``eval`` or ``exec``.

Grammar
-------
- numbers (``3``, ``2.5``, ``1e6``), strings (``"snap"``), ``True`` / ``False``;
- feature names (identifiers that do not start with an underscore);
- arithmetic ``+ - * / % **`` and unary ``-`` / ``+``;
- comparisons ``< <= > >= == !=`` (chains such as ``1 < x <= 5`` allowed);
- ``name in [..]`` / ``name not in [..]`` with a list or tuple of constants;
- ``and``, ``or``, ``not`` and parentheses.

Missing values
--------------
A comparison that involves a missing value (NaN, ``None``, ``pd.NA``) is *unknown*, and the
logic is three-valued (Kleene): ``unknown and False`` is False, ``unknown or True`` is True,
``not unknown`` is unknown. An expression fires only where it is known to be True, so every
comparison with a missing value counts as false, also under ``not``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["Expression", "ExpressionError", "compile_expression"]


class ExpressionError(ValueError):
    """Raised when an expression's text is not in the grammar."""


# -- values ----------------------------------------------------------------------------------
# Vectorised: a numeric value is a float64 array; a categorical value an object array; a
# logical value a pair (truth, known) of bool arrays. One row: float / str / None and, for
# logic, True / False / None (unknown).

_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOL: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}

Logical = tuple[NDArray[np.bool_], NDArray[np.bool_]]


def _is_missing_scalar(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _missing_mask(values: NDArray[Any]) -> NDArray[np.bool_]:
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.asarray(pd.isna(values), dtype=bool)


class _Node:
    """One node of a compiled expression."""

    kind: str  # "number", "text" or "logic"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Any:
        raise NotImplementedError

    def one(self, x: Mapping[str, Any]) -> Any:
        raise NotImplementedError


@dataclass
class _Constant(_Node):
    value: float | str

    def __post_init__(self) -> None:
        self.kind = "text" if isinstance(self.value, str) else "number"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Any:
        return self.value

    def one(self, x: Mapping[str, Any]) -> Any:
        return self.value


@dataclass
class _Name(_Node):
    name: str

    def __post_init__(self) -> None:
        self.kind = "value"  # numeric or categorical: known only from the data

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Any:
        return columns[self.name]

    def one(self, x: Mapping[str, Any]) -> Any:
        value = x[self.name]
        if isinstance(value, np.generic):
            value = value.item()
        return None if _is_missing_scalar(value) else value


@dataclass
class _Arith(_Node):
    op: Callable[[Any, Any], Any]
    left: _Node
    right: _Node

    def __post_init__(self) -> None:
        self.kind = "number"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Any:
        a = _as_float(self.left.many(columns, n_rows))
        b = _as_float(self.right.many(columns, n_rows))
        with np.errstate(all="ignore"):
            return np.asarray(self.op(a, b), dtype=np.float64)

    def one(self, x: Mapping[str, Any]) -> Any:
        a, b = self.left.one(x), self.right.one(x)
        if a is None or b is None:
            return None
        with np.errstate(all="ignore"):
            result = float(self.op(np.float64(a), np.float64(b)))
        return None if math.isnan(result) else result


@dataclass
class _Negate(_Node):
    operand: _Node
    sign: float

    def __post_init__(self) -> None:
        self.kind = "number"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Any:
        return self.sign * _as_float(self.operand.many(columns, n_rows))

    def one(self, x: Mapping[str, Any]) -> Any:
        value = self.operand.one(x)
        return None if value is None else self.sign * float(value)


def _as_float(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind != "f":
        try:
            return value.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"expected a numeric feature in arithmetic, got {value.dtype}") from exc
    if isinstance(value, str):
        raise TypeError(f"expected a number in arithmetic, got the string {value!r}")
    return value


@dataclass
class _Compare(_Node):
    op: Callable[[Any, Any], Any]
    left: _Node
    right: _Node

    def __post_init__(self) -> None:
        self.kind = "logic"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Logical:
        a = self.left.many(columns, n_rows)
        b = self.right.many(columns, n_rows)
        known = np.ones(n_rows, dtype=bool)
        for side in (a, b):
            if isinstance(side, np.ndarray):
                known &= ~_missing_mask(side)
        if isinstance(a, np.ndarray) and a.dtype.kind != "f" and not isinstance(b, str):
            a = _as_float(a) if self.op not in (operator.eq, operator.ne) else a
        with np.errstate(all="ignore"):
            truth = np.asarray(self.op(a, b), dtype=bool)
        truth = np.broadcast_to(truth, (n_rows,))
        return truth & known, known

    def one(self, x: Mapping[str, Any]) -> bool | None:
        a, b = self.left.one(x), self.right.one(x)
        if a is None or b is None:
            return None
        if isinstance(a, str) != isinstance(b, str):
            if self.op in (operator.eq, operator.ne):
                return self.op is operator.ne
            raise TypeError(f"cannot order a string and a number: {a!r} and {b!r}")
        return bool(self.op(a, b))


@dataclass
class _Membership(_Node):
    operand: _Node
    options: tuple[float | str, ...]
    negate: bool

    def __post_init__(self) -> None:
        self.kind = "logic"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Logical:
        values = self.operand.many(columns, n_rows)
        values = np.broadcast_to(np.asarray(values, dtype=object), (n_rows,))
        known = ~np.asarray(pd.isna(values), dtype=bool)
        values = np.where(known, values, np.array(None, dtype=object))
        truth = np.isin(values, np.asarray(self.options, dtype=object))
        if self.negate:
            truth = ~truth
        return truth & known, known

    def one(self, x: Mapping[str, Any]) -> bool | None:
        value = self.operand.one(x)
        if value is None:
            return None
        return (value in self.options) != self.negate


@dataclass
class _And(_Node):
    parts: list[_Node]
    is_or: bool

    def __post_init__(self) -> None:
        self.kind = "logic"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Logical:
        truth, known = self.parts[0].many(columns, n_rows)
        for part in self.parts[1:]:
            t2, k2 = part.many(columns, n_rows)
            if self.is_or:
                # true if either is known true; known if both known or either known true
                new_truth = truth | t2
                known = (known & k2) | truth | t2
            else:
                false_a, false_b = known & ~truth, k2 & ~t2
                new_truth = truth & t2
                known = (known & k2) | false_a | false_b
            truth = new_truth
        return truth, known

    def one(self, x: Mapping[str, Any]) -> bool | None:
        decisive = self.is_or  # or: a True decides; and: a False decides
        unknown = False
        for part in self.parts:
            value = part.one(x)
            if value is None:
                unknown = True
            elif value is decisive:
                return decisive
        return None if unknown else not decisive


@dataclass
class _Not(_Node):
    operand: _Node

    def __post_init__(self) -> None:
        self.kind = "logic"

    def many(self, columns: Mapping[str, NDArray[Any]], n_rows: int) -> Logical:
        truth, known = self.operand.many(columns, n_rows)
        return ~truth & known, known

    def one(self, x: Mapping[str, Any]) -> bool | None:
        value = self.operand.one(x)
        return None if value is None else not value


# -- compiling -------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text
        self.names: set[str] = set()

    def fail(self, node: ast.AST, what: str) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        where = f" at column {col + 1}" if col is not None else ""
        return ExpressionError(f"{what}{where} in {self.text!r}")

    def logic(self, node: ast.AST) -> _Node:
        compiled = self.build(node)
        if compiled.kind != "logic":
            raise self.fail(
                node, "expected a condition (a comparison, 'in', 'and', 'or' or 'not'), got a value"
            )
        return compiled

    def value(self, node: ast.AST) -> _Node:
        compiled = self.build(node)
        if compiled.kind == "logic":
            raise self.fail(node, "expected a value, got a condition")
        return compiled

    def number(self, node: ast.AST) -> _Node:
        compiled = self.value(node)
        if compiled.kind == "text":
            raise self.fail(node, "expected a number in arithmetic, got a string")
        return compiled

    def build(self, node: ast.AST) -> _Node:
        if isinstance(node, ast.BoolOp):
            parts = [self.logic(v) for v in node.values]
            return _And(parts, is_or=isinstance(node.op, ast.Or))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return _Not(self.logic(node.operand))
            if isinstance(node.op, ast.USub | ast.UAdd):
                operand = self.number(node.operand)
                if isinstance(operand, _Constant) and not isinstance(operand.value, str):
                    sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
                    return _Constant(sign * float(operand.value))
                return _Negate(operand, -1.0 if isinstance(node.op, ast.USub) else 1.0)
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.BinOp):
            op = _ARITH.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            return _Arith(op, self.number(node.left), self.number(node.right))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return _Constant(float(value))
            if isinstance(value, int | float):
                return _Constant(float(value))
            if isinstance(value, str):
                return _Constant(value)
            raise self.fail(node, f"constant {value!r} is not allowed; expected a number or string")
        raise self.fail(node, f"{type(node).__name__} is not allowed")

    def name(self, node: ast.Name) -> _Node:
        if node.id.startswith("_"):
            raise self.fail(node, f"name {node.id!r} is not allowed (names may not start with '_')")
        if node.id in ("True", "False", "None"):
            raise self.fail(node, f"name {node.id!r} is not allowed")
        self.names.add(node.id)
        return _Name(node.id)

    def compare(self, node: ast.Compare) -> _Node:
        left_node = node.left
        parts: list[_Node] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right_node, ast.List | ast.Tuple):
                    raise self.fail(right_node, "expected a list of constants after 'in'")
                options: list[float | str] = []
                for element in right_node.elts:
                    constant = self.build(element)
                    if not isinstance(constant, _Constant):
                        raise self.fail(element, "expected only constants in an 'in' list")
                    options.append(constant.value)
                if not options:
                    raise self.fail(right_node, "expected a non-empty list after 'in'")
                parts.append(
                    _Membership(
                        self.value(left_node), tuple(options), negate=isinstance(op, ast.NotIn)
                    )
                )
            else:
                fn = _COMPARE.get(type(op))
                if fn is None:
                    raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
                left, right = self.value(left_node), self.value(right_node)
                ordering = fn not in (operator.eq, operator.ne)
                if ordering and "text" in (left.kind, right.kind):
                    raise self.fail(
                        node, f"'{_SYMBOL[type(op)]}' expected numbers, got a string constant"
                    )
                parts.append(_Compare(fn, left, right))
            left_node = right_node
        return parts[0] if len(parts) == 1 else _And(parts, is_or=False)


@dataclass(frozen=True)
class Expression:
    """A compiled condition over feature names.

    Attributes
    ----------
    text : str
        The source text.
    names : frozenset of str
        The feature names the expression reads.
    """

    text: str
    names: frozenset[str]
    _root: _Node

    def evaluate(self, columns: Mapping[str, Any], n_rows: int | None = None) -> NDArray[np.bool_]:
        """Where the condition is known to be true, one bool per row.

        Parameters
        ----------
        columns : mapping of str to array-like
            One array per feature name (every name in :attr:`names`).
        n_rows : int, optional
            Number of rows; inferred from the columns when omitted.

        Returns
        -------
        ndarray of bool, shape (n_rows,)
            True where the expression fires; missing values never make it fire.
        """
        arrays: dict[str, NDArray[Any]] = {}
        for name in self.names:
            if name not in columns:
                raise KeyError(f"expected feature {name!r} for {self.text!r}, got none")
            arr = np.asarray(columns[name])
            if arr.dtype.kind in "biu":
                arr = arr.astype(np.float64)
            elif arr.dtype.kind != "f":
                arr = arr.astype(object)
                arr[np.asarray(pd.isna(arr), dtype=bool)] = None
            arrays[name] = arr
        if n_rows is None:
            n_rows = len(next(iter(arrays.values()))) if arrays else 1
        truth, known = self._root.many(arrays, n_rows)
        return np.asarray(truth & known, dtype=bool)

    def evaluate_one(self, x: Mapping[str, Any]) -> bool:
        """Whether the condition is known to be true for one record ``x``."""
        return self._root.one(x) is True


def compile_expression(text: str) -> Expression:
    """Parse ``text`` in the safe grammar and compile it.

    Parameters
    ----------
    text : str
        The condition, e.g. ``"amount_ratio_program > 5 and not household_size > 4"``.

    Returns
    -------
    Expression
        The compiled condition.

    Raises
    ------
    ExpressionError
        On a syntax error or any construct outside the grammar (attribute access, calls,
        subscripts, names starting with ``_``, lambdas, comprehensions, ...).

    Examples
    --------
    >>> expr = compile_expression("amount > 100 and program in ['snap']")
    >>> sorted(expr.names)
    ['amount', 'program']
    >>> expr.evaluate({"amount": [50.0, 500.0], "program": ["snap", "snap"]}).tolist()
    [False, True]
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("expected an expression, got an empty string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid syntax in {text!r}: {exc.msg}") from None
    compiler = _Compiler(text)
    root = compiler.logic(tree.body)
    return Expression(text=text, names=frozenset(compiler.names), _root=root)
