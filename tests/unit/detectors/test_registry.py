"""The registry: names to classes, lazily imported, refusing paths outside the package."""

from __future__ import annotations

import pytest

import detectors
from detectors.empirical import ECODDetector
from detectors.registry import get_class, register, registered, resolve


def test_build_by_name_passes_params() -> None:
    det = detectors.build("ecod", contamination=0.05)
    assert isinstance(det, ECODDetector)
    assert det.contamination == 0.05


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown detector 'nope'; expected one of .*'iforest'"):
        detectors.build("nope")


def test_unknown_param_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        detectors.build("hbos", bins=3)


def test_available_lists_the_importable_defaults() -> None:
    names = detectors.available()
    for name in ("iforest", "ecod", "copod", "hbos", "knn", "lof", "xgboost"):
        assert name in names
    assert set(names) <= set(registered())


def test_a_missing_module_fails_only_its_own_name() -> None:
    register("later", "detectors.not_written_yet:Later")
    try:
        assert "later" not in detectors.available()
        with pytest.raises(ImportError, match="later"):
            get_class("later")
    finally:
        from detectors import registry

        registry._REGISTRY.pop("later")


@pytest.mark.parametrize("path", ["os:system", "detectors.empirical", "detectors.base:np"])
def test_resolve_refuses_anything_but_a_detector_class(path: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        resolve(path)
