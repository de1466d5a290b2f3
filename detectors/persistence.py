"""Save and load detectors as JSON + ``.npz`` (+ a model's own format), never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import BaseDetector
from detectors.registry import class_path, resolve

FORMAT_VERSION = 1
MANIFEST = "detector.json"
ARRAYS = "arrays.npz"

_SCALARS = (type(None), bool, int, float, str)


class _Writer:
    """Encodes values to JSON, collecting arrays and nested detectors on the way."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.arrays: dict[str, np.ndarray] = {}
        self.paths: list[Path] = []

    def encode(self, value: Any, key: str) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, _SCALARS):
            if isinstance(value, float) and not np.isfinite(value):
                return {"__float__": repr(value)}
            return value
        if isinstance(value, BaseDetector):
            self.paths.extend(save(value, self.directory / key))
            return {"__detector__": key}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return {"__objects__": [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v, f"{key}.{k}") for k, v in value.items()}}
        raise TypeError(
            f"cannot save {key!r}: expected a JSON scalar, list, tuple, str-keyed dict, "
            f"numpy array or BaseDetector, got {type(value).__name__}"
        )


def _decode(value: Any, directory: Path, arrays: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v, directory, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__detector__" in value:
        return load(directory / value["__detector__"])
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__objects__" in value:
        return np.asarray(
            [_decode(v, directory, arrays) for v in value["__objects__"]], dtype=object
        )
    if "__tuple__" in value:
        return tuple(_decode(v, directory, arrays) for v in value["__tuple__"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__dict__" in value:
        return {k: _decode(v, directory, arrays) for k, v in value["__dict__"].items()}
    raise ValueError(f"unknown encoded value in {directory / MANIFEST}: {value!r}")


def fitted_state(detector: BaseDetector) -> dict[str, Any]:
    """The detector's fitted attributes: public names ending in ``_``."""
    skip = set(detector._unsaved_attrs)
    return {
        k: v
        for k, v in vars(detector).items()
        if k.endswith("_") and not k.startswith("_") and k not in skip
    }


def save(detector: BaseDetector, directory: str | Path) -> list[Path]:
    """Write ``detector`` (fitted or not) to ``directory``.

    The class path, parameters and scalar fitted state go to ``detector.json``, fitted arrays
    to ``arrays.npz``, anything else through the detector's ``_save_extra`` hook (XGBoost
    writes its ``.ubj``). A detector held in a parameter or fitted attribute (an ensemble's
    members) is saved the same way into a subdirectory named after the attribute.

    Parameters
    ----------
    detector : BaseDetector
        What to save.
    directory : str or Path
        Created if missing; files of the same names are overwritten.

    Returns
    -------
    list of Path
        Every file written, members' included.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from detectors.empirical import ECODDetector
    >>> det = ECODDetector().fit(np.random.default_rng(0).normal(size=(50, 2)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save(det, d)
    ...     bool((load(d).decision_scores_ == det.decision_scores_).all())
    True
    """
    if not isinstance(detector, BaseDetector):
        raise TypeError(f"detector must be a BaseDetector, got {type(detector).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    writer = _Writer(directory)
    manifest = {
        "format": FORMAT_VERSION,
        "class": class_path(type(detector)),
        "params": {k: writer.encode(v, k) for k, v in detector.get_params().items()},
        "fitted": {k: writer.encode(v, k) for k, v in fitted_state(detector).items()},
    }
    if writer.arrays:
        arrays_path = directory / ARRAYS
        with arrays_path.open("wb") as fh:
            np.savez(fh, **writer.arrays)  # type: ignore[arg-type]  # numpy stub
        writer.paths.append(arrays_path)
    writer.paths.extend(detector._save_extra(directory))
    manifest_path = directory / MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    writer.paths.append(manifest_path)
    return writer.paths


def load(directory: str | Path) -> BaseDetector:
    """Read a detector written by :func:`save`; it scores exactly as the saved one did.

    Parameters
    ----------
    directory : str or Path
        A directory holding ``detector.json``.

    Returns
    -------
    BaseDetector
        The detector, fitted if it was saved fitted.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"expected a saved detector with {manifest_path}, found none")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path}: expected format {FORMAT_VERSION}, got {manifest.get('format')!r}"
        )
    cls = resolve(manifest["class"])
    arrays_path = directory / ARRAYS
    arrays: dict[str, np.ndarray] = {}
    if arrays_path.is_file():
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    params = {k: _decode(v, directory, arrays) for k, v in manifest["params"].items()}
    detector = cls(**params)
    for name, value in manifest["fitted"].items():
        setattr(detector, name, _decode(value, directory, arrays))
    detector._load_extra(directory)
    detector._restore()
    return detector
