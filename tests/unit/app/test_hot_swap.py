"""Promoting a bundle switches the served model without dropping a request."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from fastapi.testclient import TestClient

from fraudlens.app import WATCH_SECONDS, create_app, promote
from fraudlens.database import make_engine
from fraudlens.settings import load_settings
from review.keys import SqlKeyStore
from scoring.bundle import BundleError


def _record(row: dict, claim_id: str) -> dict:
    rec = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if v is not None and v == v}
    for label in ("is_fraud", "typology", "ring_id", "person_id", "sharing"):
        rec.pop(label, None)
    rec["claim_id"] = claim_id
    return rec


def test_promote_swaps_model_under_load(trained, tmp_path) -> None:
    settings, _, new = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    s = load_settings(None, home=home, demo=True)
    v1 = (s.bundles_root / "CURRENT").read_text().strip()
    # A second bundle: the same artifacts under another version (the manifest is not hashed).
    shutil.copytree(s.bundles_root / v1, s.bundles_root / "v2")
    manifest = json.loads((s.bundles_root / "v2" / "manifest.json").read_text())
    manifest["version"] = "v2"
    (s.bundles_root / "v2" / "manifest.json").write_text(json.dumps(manifest))

    engine = make_engine(s.db_url)
    _, secret = SqlKeyStore(engine).create("t", ["score"])
    auth = {"Authorization": f"Bearer {secret}"}
    rows = new.to_dict("records")
    seen: list[tuple[int, str | None]] = []
    with TestClient(create_app(s, engine=engine)) as client:
        stop = threading.Event()

        def hammer() -> None:
            i = 0
            while not stop.is_set() and i < 2000:
                r = client.post("/v1/score", json=_record(rows[i % len(rows)], f"SWAP-{i}"), headers=auth)
                seen.append((r.status_code, r.json().get("model_version")))
                i += 1

        t = threading.Thread(target=hammer)
        t.start()
        time.sleep(0.5)
        promote(s, "v2")
        deadline = time.monotonic() + 10 * WATCH_SECONDS + 10
        while time.monotonic() < deadline and not any(v == "v2" for _, v in seen[-5:]):
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        t.join()
        assert client.get("/v1/models/current", headers=auth).json()["version"] == "v2"
    assert all(code == 200 for code, _ in seen), {code for code, _ in seen}
    versions = [v for _, v in seen]
    assert versions[0] == v1 and versions[-1] == "v2"
    first_v2 = versions.index("v2")
    assert all(v == "v2" for v in versions[first_v2:])


def test_promote_refuses_a_modified_bundle(trained, tmp_path) -> None:
    settings, _, _ = trained
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    s = load_settings(None, home=home, demo=True)
    v1 = (s.bundles_root / "CURRENT").read_text().strip()
    shutil.copytree(s.bundles_root / v1, s.bundles_root / "bad")
    (s.bundles_root / "bad" / "calibration.npz").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="calibration.npz"):
        promote(s, "bad")
    assert (s.bundles_root / "CURRENT").read_text().strip() == v1
