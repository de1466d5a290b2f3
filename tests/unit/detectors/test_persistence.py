"""save/load: JSON + npz, nested detectors in subdirectories, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
from numpy.typing import NDArray

import detectors
from detectors.base import ArrayLike, BaseDetector
from detectors.empirical import ECODDetector
from detectors.persistence import ARRAYS, MANIFEST


class _Pair(BaseDetector):
    """A tiny composite: holds two detectors in a parameter and in a fitted attribute."""

    def __init__(
        self, first: BaseDetector | None = None, weights: tuple[float, ...] = (1.0, 1.0)
    ) -> None:
        self.first = first
        self.weights = weights

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        arr = self._validate_fit_input(X)
        self.members_ = [ECODDetector().fit(arr), ECODDetector(contamination=0.2).fit(arr)]
        self._set_training_outputs(self._score(arr))
        return self

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        return self._score(self._validate_score_input(X))

    def _score(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        return sum(
            w * m.score_samples(arr) for w, m in zip(self.weights, self.members_, strict=True)
        )


def test_files_are_json_and_npz(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    det = ECODDetector().fit(X)
    paths = detectors.save(det, tmp_path)
    assert {p.name for p in paths} == {MANIFEST, ARRAYS}
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["class"] == "detectors.empirical:ECODDetector"
    assert manifest["params"] == {"contamination": 0.1}
    with np.load(tmp_path / ARRAYS, allow_pickle=False) as npz:
        assert "values_" in npz.files


def test_nested_detectors_go_to_subdirectories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A composite defined outside the package: allow its module for this test only.
    from detectors import persistence, registry

    real_path, real_resolve = registry.class_path, registry.resolve
    monkeypatch.setattr(
        persistence, "class_path", lambda c: "detectors.x:_Pair" if c is _Pair else real_path(c)
    )
    monkeypatch.setattr(
        persistence, "resolve", lambda p: _Pair if p == "detectors.x:_Pair" else real_resolve(p)
    )
    X = np.random.default_rng(0).normal(size=(100, 3))
    det = _Pair(first=ECODDetector(contamination=0.3), weights=(0.5, 2.0)).fit(X)
    paths = detectors.save(det, tmp_path)
    assert (tmp_path / "members_.0" / MANIFEST) in paths
    assert (tmp_path / "first" / MANIFEST) in paths
    loaded = detectors.load(tmp_path)
    assert loaded.weights == (0.5, 2.0)
    assert loaded.first.contamination == 0.3
    assert loaded.members_[1].contamination == 0.2
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


def test_feature_names_survive(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["amount", "age"])
    det = ECODDetector().fit(frame)
    loaded = detectors.load(detectors.save(det, tmp_path)[-1].parent)
    assert list(loaded.feature_names_in_) == ["amount", "age"]
    with pytest.raises(ValueError, match="age"):
        loaded.score_samples(frame[["amount"]])


def test_load_refuses_a_missing_or_foreign_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="detector.json"):
        detectors.load(tmp_path)
    (tmp_path / MANIFEST).write_text(
        json.dumps({"format": 1, "class": "os:system", "params": {}, "fitted": {}})
    )
    with pytest.raises(ValueError, match="detectors.<module>"):
        detectors.load(tmp_path)
