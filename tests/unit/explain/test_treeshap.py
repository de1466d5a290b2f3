"""Explanations are exact TreeSHAP: our contributions equal the shap library's, and add up to the margin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import detectors
from explain.reasons import reasons_from_contributions


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 3]) + rng.normal(0, 0.5, 3000)) > 1.8).astype(int)
    det = detectors.build("xgboost", n_estimators=60, random_state=0, n_jobs=1).fit(X, y)
    return det, X


def test_contributions_equal_the_shap_library(model) -> None:
    shap = pytest.importorskip("shap")
    det, X = model
    ours = det.contributions(X[:200])
    explainer = shap.TreeExplainer(det.booster_)
    theirs = explainer.shap_values(pd.DataFrame(X[:200]))
    np.testing.assert_allclose(ours[:, :-1], theirs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours[:, -1], explainer.expected_value, rtol=1e-4, atol=1e-5)


def test_contributions_add_up_to_the_margin(model) -> None:
    det, X = model
    contrib = det.contributions(X[:500])
    np.testing.assert_allclose(contrib.sum(axis=1), det.margin(X[:500]), rtol=1e-5, atol=1e-5)


def test_reasons_name_the_features_that_raised_the_risk(model) -> None:
    det, X = model
    i = int(np.argmax(det.score_samples(X)))
    contrib = det.contributions(X[i : i + 1])[0]
    names = [f"f{j}" for j in range(6)]
    reasons = reasons_from_contributions(names, X[i], contrib[:-1], lambda n: n, top=3)
    assert reasons and reasons[0].code == names[int(np.argmax(contrib[:-1]))]
    assert all(r.contribution > 0 for r in reasons)


@pytest.fixture(scope="module")
def deep_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 8))
    X[rng.random(X.shape) < 0.1] = np.nan
    Z = np.nan_to_num(X)
    y = ((Z[:, 0] + Z[:, 1] * Z[:, 2] - 0.5 * Z[:, 5] + rng.normal(0, 0.7, 2000)) > 1.0).astype(int)
    det = detectors.build("xgboost", n_estimators=300, max_depth=7, random_state=0, n_jobs=1)
    return det.fit(X, y), X


def test_contributions_equal_xgboosts_own_on_deep_trees_with_missing_values(deep_model) -> None:
    det, X = deep_model
    assert det._shap_max_depth >= 6 and det.tree_roots_.shape[0] == 300
    rows = X[:300]
    assert np.isnan(rows).any()
    ours = det.contributions(rows)
    theirs = det.reference_contributions(rows)
    assert ours.shape == theirs.shape == (300, 9)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.sum(axis=1), det.margin(rows), rtol=0, atol=1e-9)


def test_one_row_is_the_same_as_in_a_batch(deep_model) -> None:
    det, X = deep_model
    batch = det.contributions(X[:20])
    for i in (0, 7):
        one = det.contributions(X[i : i + 1])
        assert one.shape == (1, 9)
        np.testing.assert_array_equal(one, batch[i : i + 1])
        np.testing.assert_allclose(
            one, det.reference_contributions(X[i : i + 1]), rtol=0, atol=1e-5
        )


def test_a_row_with_every_value_missing_follows_the_default_sides(deep_model) -> None:
    det, _ = deep_model
    row = np.full((1, 8), np.nan)
    np.testing.assert_allclose(
        det.contributions(row), det.reference_contributions(row), rtol=0, atol=1e-5
    )
