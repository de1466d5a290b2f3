"""Tests for the safe expression grammar and the red-flag rules detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import rules as rules_module
from detectors.expressions import ExpressionError, compile_expression
from detectors.rules import RuleError, RulesDetector, load_rules, parse_rules


def _rule(expression: str, rule_id: str = "r1", weight: float = 1.0, reason: str = "fired") -> dict:
    return {"id": rule_id, "expression": expression, "weight": weight, "reason": reason}


# -- grammar: accepted -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "columns", "expected"),
    [
        ("a > 1", {"a": [0.0, 2.0]}, [False, True]),
        ("a >= 2 and b < 1", {"a": [2.0, 2.0], "b": [0.0, 5.0]}, [True, False]),
        ("a > 5 or b == 1", {"a": [0.0, 9.0, 0.0], "b": [1.0, 0.0, 0.0]}, [True, True, False]),
        ("not a > 1", {"a": [0.0, 2.0]}, [True, False]),
        ("(a + b) * 2 > 10", {"a": [1.0, 4.0], "b": [1.0, 2.0]}, [False, True]),
        ("a / b >= 3", {"a": [9.0, 2.0], "b": [3.0, 1.0]}, [True, False]),
        ("a % 2 == 1 and -a < -2", {"a": [3.0, 1.0, 4.0]}, [True, False, False]),
        ("a ** 2 > 8.5", {"a": [3.0, 2.0]}, [True, False]),
        ("1 < a <= 5", {"a": [1.0, 3.0, 5.0, 6.0]}, [False, True, True, False]),
        ("a > 1e3", {"a": [999.0, 1001.0]}, [False, True]),
        ("p in ['snap', 'tanf']", {"p": ["snap", "wic", "tanf"]}, [True, False, True]),
        ("p not in ('snap',)", {"p": ["snap", "wic"]}, [False, True]),
        ("p == 'wic' and a > 0", {"p": ["wic", "wic"], "a": [1.0, 0.0]}, [True, False]),
        ("p != 'wic'", {"p": ["wic", "snap"]}, [False, True]),
        ("a > 0", {"a": np.array([0, 3], dtype=np.int64)}, [False, True]),
    ],
)
def test_accepted_expressions_evaluate_vectorised_and_per_row(text, columns, expected):
    expr = compile_expression(text)
    assert expr.evaluate(columns).tolist() == expected
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    assert [expr.evaluate_one(row) for row in rows] == expected


def test_names_are_collected():
    assert compile_expression("a > b + c and d in ['x']").names == {"a", "b", "c", "d"}


# -- grammar: rejected -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a.real > 1", "Attribute"),
        ("abs(a) > 1", "Call"),
        ("a[0] > 1", "Subscript"),
        ("__import__ > 1", "may not start with '_'"),
        ("_private > 1", "may not start with '_'"),
        ("(lambda: 1) > 0", "Lambda"),
        ("[x for x in a] == 1", "ListComp"),
        ("{x for x in a} == 1", "SetComp"),
        ("a if b else c", "IfExp"),
        ("a is None", "Is"),
        ("a > 1 +", "invalid syntax"),
        ("a", "expected a condition"),
        ("a + 1", "expected a condition"),
        ("a > 'x'", "expected numbers"),
        ("a in b", "list of constants"),
        ("a in [b]", "only constants"),
        ("a in []", "non-empty"),
        ("(a > 1) + 1 > 0", "expected a value"),
        ("a > None", "not allowed"),
        ("(a := 1) > 0", "NamedExpr"),
        ("", "empty"),
        ("a << 2 > 1", "LShift"),
    ],
)
def test_rejected_expressions_say_why(text, fragment):
    with pytest.raises(ExpressionError, match=None) as info:
        compile_expression(text)
    assert fragment in str(info.value)


def test_expression_text_is_never_evaluated(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec must not be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert compile_expression("a > 1").evaluate({"a": [2.0]}).tolist() == [True]


# -- missing values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["a > 1", "a <= 1", "a != 1", "not a > 1", "not a <= 1", "a + 1 > 0", "p in ['x']", "p != 'x'"],
)
def test_comparisons_with_missing_values_never_fire(text):
    expr = compile_expression(text)
    assert expr.evaluate({"a": [np.nan], "p": [None]}).tolist() == [False]
    assert expr.evaluate_one({"a": float("nan"), "p": None}) is False
    assert expr.evaluate_one({"a": pd.NA, "p": pd.NA}) is False


def test_three_valued_logic_with_missing_values():
    cols = {"a": [np.nan, np.nan], "b": [5.0, 0.0]}
    assert compile_expression("a > 1 or b > 1").evaluate(cols).tolist() == [True, False]
    assert compile_expression("a > 1 and b > 1").evaluate(cols).tolist() == [False, False]
    assert compile_expression("not (a > 1 and b > 1)").evaluate(cols).tolist() == [False, True]
    assert compile_expression("not (a > 1 and b > 1)").evaluate_one({"a": np.nan, "b": 0.0})


def test_division_by_zero_is_quiet():
    expr = compile_expression("a / b > 1")
    with np.errstate(all="raise"):
        assert expr.evaluate({"a": [1.0, 0.0], "b": [0.0, 0.0]}).tolist() == [True, False]


# -- rules and the detector --------------------------------------------------------------------
@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [100.0, 9000.0, np.nan, 50.0],
            "ratio": [1.0, 7.5, 8.0, np.nan],
            "program": pd.array(["snap", "tanf", "snap", None], dtype="string"),
        }
    )


@pytest.fixture
def rules() -> list[dict]:
    return [
        _rule("ratio >= 5", "high_ratio", 2.0, "Amount is {ratio:.1f}x the program median."),
        _rule("amount > 5000 and program in ['tanf']", "big_tanf", 1.5, "Large {program} claim."),
        _rule("not amount > 1000", "not_large", 0.25, "Amount {amount:.0f} is not large."),
    ]


def test_score_is_sum_of_fired_weights(frame, rules):
    det = RulesDetector(rules).fit(frame)
    assert det.score_samples(frame).tolist() == [0.25, 3.5, 2.0, 0.25]
    assert det.fired(frame) == [
        ["not_large"],
        ["high_ratio", "big_tanf"],
        ["high_ratio"],
        ["not_large"],
    ]
    assert det.decision_scores_.tolist() == [0.25, 3.5, 2.0, 0.25]


def test_score_one_matches_vectorised(frame, rules):
    det = RulesDetector(rules).fit(frame)
    batch = det.score_samples(frame)
    for i in range(len(frame)):
        assert det.score_one(frame.iloc[i]) == batch[i]


def test_a_row_scores_the_same_bits_alone_row_wise_and_vectorised():
    # weights whose sums depend on the order of addition: a matrix product (the vectorised path
    # before) differed from score_one in 91 of these 256 rows
    weights = [0.1, 0.2, 0.7, 0.3, 0.6, 0.15, 0.45, 0.05]
    names = [f"f{j}" for j in range(len(weights))]
    rules = [_rule(f"{n} > 0.5", f"r{j}", w) for j, (n, w) in enumerate(zip(names, weights, strict=True))]
    grid = np.array(np.meshgrid(*[[0.0, 1.0]] * len(weights))).reshape(len(weights), -1).T
    X = np.vstack([grid, np.full((1, len(weights)), np.nan)])  # and a row of missing values
    det = RulesDetector(rules, feature_names=names).fit(X)
    alone = [det.score_one(row) for row in X]
    assert len(X) > rules_module.ROW_WISE_MAX  # the vectorised path
    assert det.score_samples(X).tolist() == alone
    assert det.score_samples(pd.DataFrame(X, columns=names)).tolist() == alone
    small = np.concatenate([det.score_samples(X[i : i + 7]) for i in range(0, len(X), 7)])
    assert small.tolist() == alone  # the row-wise path of small batches
    assert det.score_samples(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match="8 columns"):
        det.score_samples(X[:3, :5])


def test_small_float32_batches_score_as_large_ones():
    # numpy compares a float32 array with a Python constant in float32: float32(0.1) > 0.1 is
    # False there, True in float64; a small batch must not take the float64 row-wise path
    det = RulesDetector([_rule("a > 0.1")], feature_names=["a"]).fit(np.array([[0.0], [1.0]]))
    x = np.full((rules_module.ROW_WISE_MAX + 1, 1), 0.1, dtype=np.float32)
    assert det.score_samples(x[:1]).tolist() == det.score_samples(x).tolist()[:1]


def test_numpy_input_with_feature_names():
    det = RulesDetector([_rule("a > b")], feature_names=["a", "b"]).fit(
        np.array([[1.0, 0.0], [0.0, 1.0]])
    )
    assert det.score_samples(np.array([[3.0, 1.0], [1.0, 3.0]])).tolist() == [1.0, 0.0]
    assert det.score_one(np.array([3.0, 1.0])) == 1.0


def test_reasons_interpolate_feature_values(frame, rules):
    det = RulesDetector(rules).fit(frame)
    assert det.reasons(frame.iloc[1]) == [
        "Amount is 7.5x the program median.",
        "Large tanf claim.",
    ]
    assert det.reasons(frame.iloc[0]) == ["Amount 100 is not large."]
    assert det.reasons({"amount": 2000.0, "ratio": 1.0, "program": "snap"}) == []


def test_reason_renders_missing_value_as_unknown():
    det = RulesDetector([_rule("a > 1", reason="b is {b:.2f}")]).fit(
        pd.DataFrame({"a": [2.0], "b": [np.nan]})
    )
    assert det.reasons({"a": 2.0, "b": np.nan}) == ["b is unknown"]


def test_unknown_feature_names_rule_and_name(frame):
    with pytest.raises(RuleError, match=r"rule 'bad'.*unknown feature 'nope'"):
        RulesDetector([_rule("nope > 1", "bad")]).fit(frame)
    with pytest.raises(RuleError, match=r"rule 'bad_reason'.*unknown feature 'missing'"):
        RulesDetector([_rule("ratio > 1", "bad_reason", reason="{missing}")]).fit(frame)


def test_bad_expression_names_rule_id(frame):
    with pytest.raises(RuleError, match=r"rule 'sneaky'.*Call is not allowed"):
        RulesDetector([_rule("__import__('os').system('true')", "sneaky")]).fit(frame)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([{"expression": "a > 1", "weight": 1, "reason": "x"}], "non-empty string 'id'"),
        ([{"id": "r", "expression": "a > 1", "reason": "x"}], "missing keys ['weight']"),
        ([_rule("a > 1") | {"extra": 1}], "unknown keys ['extra']"),
        ([_rule("a > 1", weight=0)], "weight must be a finite number > 0, got 0"),
        ([_rule("a > 1", weight="2")], "weight must be a finite number > 0"),
        ([_rule("a > 1", weight=float("inf"))], "weight must be a finite number > 0"),
        ([_rule("a > 1", reason="")], "non-empty string 'reason'"),
        ([_rule("a > 1", reason="{a.__class__}")], "plain feature names"),
        ([_rule("a > 1", reason="{a!r}")], "must not nest or convert"),
        ([_rule("a > 1", reason="{a")], "not a valid format string"),
        ([_rule("a > 1"), _rule("a > 2")], "duplicate id"),
        ([], "non-empty list"),
        ({"rulez": []}, "single key 'rules'"),
        (["a > 1"], "expected a mapping"),
    ],
)
def test_malformed_rules_are_refused(raw, fragment):
    with pytest.raises(RuleError) as info:
        parse_rules(raw)
    assert fragment in str(info.value)


def test_load_rules_from_yaml_text_and_file(tmp_path):
    text = "rules:\n  - id: big\n    expression: amount > 10\n    weight: 2\n    reason: Big.\n"
    assert [r.id for r in load_rules(text)] == ["big"]
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    assert load_rules(path)[0].weight == 2.0
    assert load_rules(str(path))[0].to_dict()["expression"] == "amount > 10"


def test_yaml_errors_are_clear(tmp_path):
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules("rules: [\n  - id: x\n")
    with pytest.raises(RuleError, match="no such file"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: r\n    expression: a.b > 1\n    weight: 1\n    reason: x\n")
    with pytest.raises(RuleError, match=r"bad.yaml: rule 'r': Attribute is not allowed"):
        load_rules(bad)


def test_default_rules_load_and_fire():
    rules = load_rules()
    assert rules and len({r.id for r in rules}) == len(rules)
    names = sorted(set().union(*(r.names for r in rules)))
    X = pd.DataFrame({name: [0.0, 100.0] for name in names})
    det = RulesDetector().fit(X)
    scores = det.score_samples(X)
    assert scores[0] == 0.0 and scores[1] > 0.0


def test_fit_requires_names_and_validates_contamination():
    with pytest.raises(ValueError, match="needs named features"):
        RulesDetector([_rule("a > 1")]).fit(np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"contamination must be in \(0, 0.5\], got 0.7"):
        RulesDetector([_rule("a > 1")], contamination=0.7).fit(pd.DataFrame({"a": [1.0]}))


def test_scoring_before_fit_raises():
    from detectors.base import NotFittedError

    with pytest.raises(NotFittedError):
        RulesDetector([_rule("a > 1")]).score_samples(pd.DataFrame({"a": [1.0]}))
