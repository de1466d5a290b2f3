"""Claim features: batch and one-at-a-time give identical values; no protected attribute enters."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.features import ClaimFeatures
from fraudlens import synth
from fraudlens.spec import RecordSpec


@pytest.fixture(scope="module")
def data():
    spec = RecordSpec.default()
    frame = spec.validate_frame(synth.generate(6000, seed=11)).accepted
    return spec, frame


def test_batch_equals_one_at_a_time(data) -> None:
    spec, frame = data
    f = ClaimFeatures(spec).fit(frame.iloc[:4000])
    batch = f.transform(frame.iloc[4000:]).to_numpy()
    for k, rec in enumerate(frame.iloc[4000:4300].to_dict("records")):
        one = f.transform_claim(spec.claim_from_row(rec))
        np.testing.assert_array_equal(one[0], batch[k])
    claims = [spec.claim_from_row(rec) for rec in frame.iloc[4000:].to_dict("records")]
    np.testing.assert_array_equal(f.transform_claims(claims), batch)  # a large batch: pandas
    np.testing.assert_array_equal(f.transform_claims(claims[:50]), batch[:50])  # a micro-batch


def test_no_protected_identity_or_label_feature(data) -> None:
    spec, frame = data
    names = ClaimFeatures(spec).fit(frame).feature_names_
    banned = set(spec.protected) | set(spec.identity) | set(spec.labels)
    for n in names:
        assert n.split("=")[0].removesuffix("_frequency") not in banned, n


def test_ratios_follow_fitted_norms(data) -> None:
    spec, frame = data
    f = ClaimFeatures(spec).fit(frame)
    X = f.transform(frame)
    housing = frame["program"] == "housing"
    med = frame.loc[housing, "amount"].median()
    np.testing.assert_allclose(X.loc[housing, "amount_ratio_program"], frame.loc[housing, "amount"] / med)
    assert X.loc[housing, "program=housing"].eq(1.0).all()


def test_unseen_category_and_missing_values(data) -> None:
    spec, frame = data
    f = ClaimFeatures(spec).fit(frame)
    rec = frame.iloc[0].to_dict()
    rec["region"] = "atlantis"
    rec["dependents"] = None
    x = f.transform_claim(spec.claim_from_row(rec))[0]
    names = f.feature_names_
    assert np.isnan(x[names.index("dependents")])
    if "region_frequency" in names:
        assert x[names.index("region_frequency")] == 0.0


def test_save_and_load(tmp_path, data) -> None:
    spec, frame = data
    f = ClaimFeatures(spec).fit(frame)
    f.save(tmp_path / "f.json")
    g = ClaimFeatures.load(spec, tmp_path / "f.json")
    np.testing.assert_array_equal(f.transform(frame).to_numpy(), g.transform(frame).to_numpy())


def test_household_buckets_at_the_edges() -> None:
    """Sizes become buckets 1..HOUSEHOLD_CAP: missing is 1, fractions truncate, any size past
    the cap (infinity too) is the cap, and anything below 1 is 1."""
    from detectors.features import HOUSEHOLD_CAP, _household_bucket

    sizes = np.array([np.nan, np.inf, -np.inf, -3.0, 0.0, 0.5, 1.0, 2.7, 5.99, 6.0, 99.0, 1e300])
    assert HOUSEHOLD_CAP == 6
    assert _household_bucket(sizes).tolist() == [1, 6, 1, 1, 1, 1, 1, 2, 5, 6, 6, 6]


def test_a_naive_timestamp_is_refused(data) -> None:
    """Claim features read the hour, weekday and month in UTC: a time without a zone could be
    any of several, so it is refused (validated claims always carry UTC)."""
    import dataclasses

    spec, frame = data
    f = ClaimFeatures(spec).fit(frame.iloc[:4000])
    claim = spec.claim_from_row(frame.iloc[4000].to_dict())
    naive = dataclasses.replace(claim, timestamp=claim.timestamp.replace(tzinfo=None))
    with pytest.raises(TypeError, match="time zone-aware"):
        f.transform_claims([naive])


def test_a_few_claims_claim_by_claim_equal_the_vectorised_pass(data) -> None:
    """Up to 256 claims are computed claim by claim in plain Python: the same values, bit for
    bit, as the vectorised pass of a larger batch, for ordinary claims and the edges (missing,
    fractional, zero, capped and infinite sizes and incomes, negative income, unseen program
    and categories, every hour of the night boundary)."""
    import dataclasses
    from datetime import UTC, datetime

    from detectors.features import _SMALL

    spec, frame = data
    f = ClaimFeatures(spec).fit(frame.iloc[:4000])
    base = [spec.claim_from_row(rec) for rec in frame.iloc[4000:4100].to_dict("records")]
    edges = []
    for k, (size, income) in enumerate(
        [(None, None), (0.5, 0.0), (0.0, -5.0), (2.7, np.inf), (6.0, -np.inf), (99.0, 1e300),
         (np.inf, 12_000.0), (-np.inf, np.nan), (3.0, 1.5e6), (2.0, -1200.0), (1.0, -1200.0)]
    ):
        c = base[k]
        numeric = {**c.numeric, "household_size": size, "declared_income": income}
        categorical = {col: (None if k % 2 else "atlantis") for col in c.categorical}
        edges.append(
            dataclasses.replace(
                c,
                program="unheard-of" if k == 3 else c.program,
                amount=0.0 if k == 10 else c.amount,  # and income -1200: 0 / 0 is NaN, not an error
                numeric=numeric,
                categorical=categorical,
                timestamp=datetime(2026, 12, 5 + k % 3, (21 + k) % 24, 59, tzinfo=UTC),
            )
        )
    claims = base + edges
    many = (claims * 3)[: _SMALL + 1]  # the vectorised pass
    with np.errstate(invalid="ignore", divide="ignore"):  # log1p(-5) is NaN, x / 0 inf, either way
        expected = f.transform_claims(many)
        for size in (1, 2, 7, len(claims)):
            np.testing.assert_array_equal(f.transform_claims(claims[:size]), expected[:size])
        for k, c in enumerate(edges):
            np.testing.assert_array_equal(f.transform_claim(c)[0], expected[len(base) + k])


def test_a_large_frame_with_values_unseen_at_training_is_scored(data) -> None:
    """Past 256 rows the look-ups go through pandas, whose arrays may be read-only: a program
    (and so each program and household size) that training never saw gets the documented
    fallback, the global median, instead of an error (which failed a whole batch before)."""
    spec, frame = data
    train = frame.iloc[:4000]
    f = ClaimFeatures(spec).fit(train[train["program"] != "tax_refund"])
    later = frame.iloc[4000:]
    assert (later["program"] == "tax_refund").any() and len(later) > 256
    X = f.transform(later)
    unseen = (later["program"] == "tax_refund").to_numpy()
    ratio = X["amount_ratio_program"].to_numpy()
    np.testing.assert_array_equal(
        ratio[unseen], later["amount"].to_numpy()[unseen] / f.global_median_
    )
    household = X["amount_ratio_household"].to_numpy()
    np.testing.assert_array_equal(household[unseen], ratio[unseen])  # falls back to the same
    claims = [spec.claim_from_row(r) for r in later.to_dict("records")]
    np.testing.assert_array_equal(f.transform_claims(claims), X.to_numpy())
    np.testing.assert_array_equal(f.transform_claims(claims[:40]), X.to_numpy()[:40])
