"""The model bundle on disk: manifest, hashed artifacts, and the verified load the Scorer uses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import detectors
from detectors.base import BaseDetector
from detectors.features import ClaimFeatures
from fraudlens.spec import RecordSpec
from scoring.policy import Policy

MANIFEST = "manifest.json"
FORMAT = 1


class BundleError(RuntimeError):
    """A bundle is missing, malformed, or an artifact does not match its recorded hash."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_artifacts(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, by relative path."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def verify(root: Path) -> dict[str, Any]:
    """Read the manifest and check every artifact's hash; raise :class:`BundleError` on mismatch."""
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root} is not a model bundle: no {MANIFEST}")
    manifest = json.loads(mpath.read_text("utf-8"))
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{root}: bundle format {manifest.get('format')!r}, expected {FORMAT}")
    recorded: dict[str, str] = manifest["artifacts"]
    actual = hash_artifacts(root)
    for rel, digest in recorded.items():
        if rel not in actual:
            raise BundleError(f"{root}: artifact {rel} is listed in the manifest but missing")
        if actual[rel] != digest:
            raise BundleError(
                f"{root}: artifact {rel} has sha256 {actual[rel][:16]}..., "
                f"the manifest records {digest[:16]}...; refusing to load a modified bundle"
            )
    extra = sorted(set(actual) - set(recorded))
    if extra:
        raise BundleError(f"{root}: files not in the manifest: {', '.join(extra)}")
    return manifest


@dataclass
class Bundle:
    """A loaded, verified model bundle: every fitted part the Scorer composes."""

    root: Path
    manifest: dict[str, Any]
    spec: RecordSpec
    features: ClaimFeatures
    graph_features: list[str]
    outlier: BaseDetector
    outlier_quantiles: NDArray[np.float64]
    supervised: BaseDetector | None
    calibration: tuple[NDArray[np.float64], NDArray[np.float64]] | None
    policy: Policy
    rules: BaseDetector | None
    feature_centre: NDArray[np.float64]
    feature_scale: NDArray[np.float64]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest["feature_names"])

    @classmethod
    def load(cls, root: str | Path, spec: RecordSpec | None = None) -> Bundle:
        """Load and verify a bundle; ``spec`` defaults to the spec saved inside it."""
        root = Path(root)
        manifest = verify(root)
        try:
            policy = Policy.from_dict(manifest["policy"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{root}: policy refused: {exc}") from None
        saved_spec = RecordSpec.load(root / "spec.yaml")
        if spec is not None and spec.hash != saved_spec.hash:
            raise BundleError(
                f"{root}: trained on record spec {saved_spec.hash[:12]}, given {spec.hash[:12]}"
            )
        spec = saved_spec
        feats = ClaimFeatures.load(spec, root / "features.json")
        arrays = np.load(root / "calibration.npz")
        calibration = None
        if "iso_x" in arrays:
            calibration = (arrays["iso_x"], arrays["iso_y"])
        supervised = detectors.load(root / "supervised") if (root / "supervised").is_dir() else None
        rules = detectors.load(root / "rules") if (root / "rules").is_dir() else None
        return cls(
            root=root,
            manifest=manifest,
            spec=spec,
            features=feats,
            graph_features=list(manifest["graph_features"]),
            outlier=detectors.load(root / "outlier"),
            outlier_quantiles=arrays["outlier_quantiles"],
            supervised=supervised,
            calibration=calibration,
            policy=policy,
            rules=rules,
            feature_centre=arrays["feature_centre"],
            feature_scale=arrays["feature_scale"],
        )
