"""KNN on a reference subsample: a training row of the sample is not its own neighbour."""

from __future__ import annotations

import numpy as np

from detectors.neighbours import KNNDetector


def test_subsampled_training_scores_leave_reference_rows_out() -> None:
    X = np.random.default_rng(3).normal(size=(600, 3))
    det = KNNDetector(n_neighbors=4, max_fit_samples=200, random_state=0).fit(X)
    ref = det.reference_
    in_ref = (X[:, None, :] == ref[None, :, :]).all(axis=2).any(axis=1)
    assert in_ref.sum() == 200
    # rows outside the sample: their 4th nearest reference row, as for a new row
    np.testing.assert_allclose(det.decision_scores_[~in_ref], det.score_samples(X[~in_ref]))
    # rows of the sample: the 4th nearest *other* reference row
    for i in np.flatnonzero(in_ref)[:20]:
        dist = np.sort(np.sqrt(((ref - X[i]) ** 2).sum(axis=1)))
        assert dist[0] == 0.0
        np.testing.assert_allclose(det.decision_scores_[i], dist[4], rtol=1e-12)
    assert np.all(det.decision_scores_[in_ref] > det.score_samples(X[in_ref]))
