"""Detector names -> classes, imported lazily by path so optional modules load on demand."""

from __future__ import annotations

import importlib
from typing import Any

from detectors.base import BaseDetector

#: name -> "module:ClassName". Imported only when built, so a module that does not exist
#: yet (or fails to import) only affects its own name.
_REGISTRY: dict[str, str] = {
    "iforest": "detectors.isolation:IForestDetector",
    "ecod": "detectors.empirical:ECODDetector",
    "copod": "detectors.empirical:COPODDetector",
    "hbos": "detectors.histogram:HBOSDetector",
    "knn": "detectors.neighbours:KNNDetector",
    "lof": "detectors.neighbours:LOFDetector",
    "xgboost": "detectors.supervised:XGBoostDetector",
    "ensemble": "detectors.ensemble:Ensemble",
    "rules": "detectors.rules:RulesDetector",
}


def register(name: str, path: str) -> None:
    """Register ``name`` for the class at ``path`` (``"package.module:ClassName"``).

    Parameters
    ----------
    name : str
        The name :func:`build` takes.
    path : str
        Import path of a :class:`~detectors.base.BaseDetector` subclass inside ``detectors``.
    """
    module, _, attr = path.partition(":")
    if not module.startswith("detectors.") or not attr:
        raise ValueError(f"path must look like 'detectors.<module>:<ClassName>', got {path!r}")
    _REGISTRY[name] = path


def resolve(path: str) -> type[BaseDetector]:
    """The detector class at ``path`` (``"detectors.module:ClassName"``).

    Only classes inside the ``detectors`` package are accepted, so a saved model cannot make
    :func:`detectors.load` import arbitrary code.

    Parameters
    ----------
    path : str
        ``"detectors.<module>:<ClassName>"``.

    Returns
    -------
    type
        The class.
    """
    module, _, attr = path.partition(":")
    if not module.startswith("detectors.") or not attr:
        raise ValueError(f"path must look like 'detectors.<module>:<ClassName>', got {path!r}")
    cls = getattr(importlib.import_module(module), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseDetector)):
        raise TypeError(f"{path!r} must name a BaseDetector subclass, got {cls!r}")
    return cls


def class_path(cls: type[BaseDetector]) -> str:
    """``"module:ClassName"`` of a detector class (the inverse of :func:`resolve`)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def get_class(name: str) -> type[BaseDetector]:
    """The class registered as ``name``.

    Parameters
    ----------
    name : str
        A registered name, see :func:`available`.

    Returns
    -------
    type
        The detector class.
    """
    try:
        path = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown detector {name!r}; expected one of {sorted(_REGISTRY)}"
        ) from None
    try:
        return resolve(path)
    except ImportError as exc:
        raise ImportError(f"detector {name!r} ({path}) cannot be imported: {exc}") from exc


def build(name: str, **params: Any) -> BaseDetector:
    """A new, unfitted detector by name.

    Parameters
    ----------
    name : str
        ``"iforest"``, ``"ecod"``, ``"copod"``, ``"hbos"``, ``"knn"``, ``"lof"``,
        ``"xgboost"``, ``"ensemble"``, ``"rules"`` or any name added with :func:`register`.
    **params
        The class's ``__init__`` parameters.

    Returns
    -------
    BaseDetector
        The unfitted detector.

    Examples
    --------
    >>> build("ecod", contamination=0.05)
    ECODDetector(contamination=0.05)
    """
    return get_class(name)(**params)


def registered() -> list[str]:
    """Every registered name, importable or not."""
    return sorted(_REGISTRY)


def available() -> list[str]:
    """Registered names whose class imports (``"ensemble"`` appears once it exists).

    Returns
    -------
    list of str
        Sorted names.
    """
    names = []
    for name, path in _REGISTRY.items():
        try:
            resolve(path)
        except ImportError:
            continue
        names.append(name)
    return sorted(names)
