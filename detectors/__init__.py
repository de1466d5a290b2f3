"""Outlier and supervised detectors behind one contract: ``build(name)``, fit, score_samples."""

from detectors.base import BaseDetector, NotFittedError, check_is_fitted
from detectors.persistence import load, save
from detectors.registry import available, build, register

__all__ = [
    "BaseDetector",
    "NotFittedError",
    "available",
    "build",
    "check_is_fitted",
    "load",
    "register",
    "save",
]
