"""Ray 2.x runs our code with pandas 3 / numpy 2 in its workers (the batch and stream drivers build on this)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_local_ray_scores_a_chunk_in_a_worker(trained) -> None:
    ray = pytest.importorskip("ray")
    settings, _, new = trained
    from fraudlens.settings import load_settings  # noqa: F401 - imported in the worker too

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        @ray.remote
        def features(bundle_dir: str, frame):  # runs in a Ray worker process
            from scoring.bundle import Bundle

            b = Bundle.load(bundle_dir)
            return b.features.transform(frame).to_numpy()

        bundle_dir = str(settings.bundles_root / (settings.bundles_root / "CURRENT").read_text().strip())
        from scoring.bundle import Bundle

        local = Bundle.load(bundle_dir).features.transform(new.iloc[:500]).to_numpy()
        remote = ray.get(features.remote(bundle_dir, new.iloc[:500]), timeout=120)
        np.testing.assert_array_equal(local, remote)
    finally:
        ray.shutdown()
