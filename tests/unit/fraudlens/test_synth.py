"""Tests of the synthetic claims generator: determinism, labels, typologies, hard negatives, bias."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from fraudlens.spec import RecordSpec
from fraudlens.synth import COLUMNS, TYPOLOGIES, generate, write

ROOT = Path(__file__).resolve().parents[3]
N = 20_000


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:  # noqa: N802 (the project calls a frame X)
    return generate(N, seed=11)


def test_same_seed_same_frame_other_seed_differs(X: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(X, generate(N, seed=11))
    other = generate(N, seed=12)
    assert not X["amount"].equals(other["amount"])
    assert not X["national_id"].equals(other["national_id"])


def test_parquet_is_bit_identical_and_round_trips(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write(generate(500, seed=4), a)
    write(generate(500, seed=4), b)
    assert a.read_bytes() == b.read_bytes()
    back = pd.read_parquet(a)
    assert list(back.columns) == list(COLUMNS)
    assert str(back["submitted_at"].dtype).endswith("UTC]")
    csv = tmp_path / "c.csv"
    write(generate(500, seed=4), csv)
    assert len(pd.read_csv(csv)) == 500
    with pytest.raises(ValueError, match=r"\.parquet or \.csv, got 'x\.json'"):
        write(back, tmp_path / "x.json")


def test_columns_match_the_record_spec_and_every_row_validates(X: pd.DataFrame) -> None:
    spec = RecordSpec.default()
    assert list(X.columns) == spec.columns
    validated = spec.validate_frame(X)
    assert len(validated.rejections) == 0, validated.rejections[:3]
    for col, f in spec.identity.items():
        assert X[col].dtype == "str", col
        if f.required:
            assert X[col].notna().all(), col
    assert X["national_id"].notna().mean() > 0.95
    assert str(X["submitted_at"].dtype) == "datetime64[us, UTC]"
    assert X["household_size"].dtype == np.int64 and X["household_size"].between(1, 30).all()
    assert X["dependents"].dtype == "Int64" and X["dependents"].isna().any()
    assert X["months_at_address"].dtype == "Int64"
    assert set(X["program"]) <= set(spec.program.values or ())
    for col, f in {**spec.categorical, **spec.protected}.items():
        if f.values:
            assert set(X[col].dropna()) <= set(f.values), col
    assert 10 <= X["region"].nunique() <= 20
    assert X["program"].nunique() == 5


def test_basic_shape(X: pd.DataFrame) -> None:
    assert len(X) == N
    assert X["claim_id"].is_unique
    assert X["submitted_at"].is_monotonic_increasing
    assert (X["amount"] >= 0).all()
    assert (X["amount"] == X["amount"].round(2)).all()
    assert (X["declared_income"] >= 0).all()
    assert X["national_id"].dropna().str.replace(r"\D", "", regex=True).str.len().eq(9).all()
    assert X["ip"].dropna().str.fullmatch(r"(\d{1,3}\.){3}\d{1,3}").all()
    assert X["date_of_birth"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    # persons claim repeatedly: about four claims per person
    claims_per_person = X.groupby("person_id").size()
    assert 2.5 < claims_per_person.mean() < 6 and claims_per_person.max() >= 10


def test_phones_parse_as_possible_us_numbers(X: pd.DataFrame) -> None:
    phones = X["phone"].dropna().sample(500, random_state=0)
    assert all(phonenumbers.is_possible_number(phonenumbers.parse(p, "US")) for p in phones)
    # several national formats are in use
    assert phones.str.startswith("(").any() and phones.str.startswith("+1").any()


def test_labels_are_consistent_and_every_typology_is_present(X: pd.DataFrame) -> None:
    assert set(X["typology"]) == set(TYPOLOGIES)
    assert ((X["is_fraud"] == 1) == (X["typology"] != "none")).all()
    assert set(X["is_fraud"].unique()) == {0, 1}
    assert 0.015 <= X["is_fraud"].mean() <= 0.03
    ring = X["typology"] == "ring"
    assert (X["ring_id"].notna() == ring).all()
    assert set(X.loc[~ring, "sharing"]) <= set(X["sharing"])


def test_fraud_rate_follows_the_argument() -> None:
    low = generate(10_000, seed=2, fraud_rate=0.01)
    high = generate(10_000, seed=2, fraud_rate=0.03)
    assert abs(low["is_fraud"].mean() - 0.01) < 0.002
    assert abs(high["is_fraud"].mean() - 0.03) < 0.002
    assert generate(1000, seed=2, fraud_rate=0.0)["is_fraud"].sum() == 0


def test_rings_have_5_to_50_identities_sharing_attributes(X: pd.DataFrame) -> None:
    rings = X[X["typology"] == "ring"]
    assert rings["ring_id"].nunique() >= 3
    for _, g in rings.groupby("ring_id"):
        assert 5 <= g["person_id"].nunique() <= 50
        nids = _norm(g["national_id"].dropna())
        assert nids.nunique() == g.loc[g["national_id"].notna(), "person_id"].nunique()
        # at least one sensitive attribute is held by several distinct identities of the ring
        shared = [
            col
            for col in ("bank_account", "phone", "device_id", "address", "ip")
            if g.groupby(_norm(g[col]))["person_id"].nunique().max() >= 2
        ]
        assert shared, g.head()


def _norm(s: pd.Series) -> pd.Series:
    """A crude normaliser for the test: lower case, digits and letters only."""
    return s.fillna("").str.lower().str.replace(r"[^0-9a-z]", "", regex=True)


def test_synthetic_identities_are_new_people_and_stolen_ones_reuse_a_victim(
    X: pd.DataFrame,
) -> None:
    synthetic = X[X["typology"] == "synthetic_identity"]
    others = X[X["typology"] != "synthetic_identity"]
    assert not set(synthetic["person_id"]) & set(others["person_id"])
    assert synthetic.groupby("person_id").size().max() <= 2
    stolen = X[X["typology"] == "stolen_identity"]
    honest = X[X["is_fraud"] == 0]
    victims = honest[honest["person_id"].isin(stolen["person_id"])]
    assert len(victims) > 0
    # same person, same date of birth, but a bank account the victim never used
    for pid, g in stolen.groupby("person_id"):
        own = honest[honest["person_id"] == pid]
        if len(own):
            assert set(g["date_of_birth"]) == set(own["date_of_birth"])
            assert not set(_norm(g["bank_account"])) & set(_norm(own["bank_account"]))


def test_velocity_bursts_come_from_one_device_in_a_short_window(X: pd.DataFrame) -> None:
    bursts = X[X["typology"] == "velocity_burst"]
    for _, g in bursts.groupby("device_id"):
        assert len(g) >= 4
        assert g["submitted_at"].max() - g["submitted_at"].min() <= pd.Timedelta(hours=72)


def test_inflation_and_duplicates_are_real_claimants_with_plausible_amounts(
    X: pd.DataFrame,
) -> None:
    honest = X[X["is_fraud"] == 0]
    for typology in ("amount_inflation", "duplicate_claim"):
        rows = X[X["typology"] == typology]
        assert rows["person_id"].isin(honest["person_id"]).all(), typology
    inflated = X[X["typology"] == "amount_inflation"]
    norm = honest.groupby("program")["amount"].median()
    ratio = inflated["amount"].to_numpy() / norm[inflated["program"]].to_numpy()
    assert np.median(ratio) > 2
    assert inflated["amount"].max() < 1_000_000
    # a duplicate has a near-identical twin claim by the same person in another program
    dup = X[X["typology"] == "duplicate_claim"]
    for _, r in dup.head(20).iterrows():
        twins = honest[
            (honest["person_id"] == r["person_id"])
            & (honest["program"] != r["program"])
            & ((honest["amount"] - r["amount"]).abs() <= 0.02 * r["amount"])
            & ((r["submitted_at"] - honest["submitted_at"]).abs() <= pd.Timedelta(days=4))
        ]
        assert len(twins) >= 1


def test_no_single_feature_equals_the_label(X: pd.DataFrame) -> None:
    y = X["is_fraud"].to_numpy()
    for col in ("program", "channel", "region", "employment_status", "household_size", "sex"):
        # within every value of the feature, both labels occur wherever fraud occurs at all
        rates = X.groupby(col, observed=True)["is_fraud"].mean()
        assert rates.max() < 0.5, (col, rates.max())
    ranks = pd.Series(X["amount"]).rank(pct=True).to_numpy()
    auc = (ranks[y == 1].mean() - ranks[y == 0].mean()) + 0.5
    assert 0.5 < auc < 0.9


def test_hard_negatives_are_present(X: pd.DataFrame) -> None:
    honest = X[X["is_fraud"] == 0]
    care = honest[honest["sharing"] == "care_home"]
    per_address = care.groupby(_norm(care["address"]))["person_id"].nunique()
    assert per_address.max() >= 10
    shelter = honest[honest["sharing"] == "shelter"]
    assert shelter.groupby(_norm(shelter["address"]))["person_id"].nunique().max() >= 5
    library = honest[honest["sharing"] == "public_ip"]
    assert library.groupby("ip")["person_id"].nunique().max() >= 10
    household = honest[honest["sharing"] == "household"]
    assert household.groupby(_norm(household["address"]))["person_id"].nunique().max() >= 2
    changed = honest[honest["sharing"] == "phone_change"]["person_id"]
    phones = honest[honest["person_id"].isin(changed)].groupby("person_id")["phone"]
    assert (phones.apply(lambda s: _norm(s).replace("", np.nan).str[-10:].nunique()) >= 2).any()


def test_households_in_one_building_live_in_units_of_their_own() -> None:
    """A household has 1-3 claiming adults; households moved into one building get distinct
    units, so no unit holds the claimants of two households (seed 13 put five people of two
    households in one unit, which the identity graph rightly calls a ring)."""
    from graph.normalise import normalise

    X = generate(N, seed=13)
    household = X[(X["sharing"] == "household") & (X["is_fraud"] == 0)]
    unit = household["address"].map(lambda a: normalise("address", a))
    assert household.groupby(unit)["person_id"].nunique().max() <= 3


def test_age_band_matches_date_of_birth(X: pd.DataFrame) -> None:
    dob = pd.to_datetime(X["date_of_birth"])
    at = X["submitted_at"].dt.tz_localize(None)
    age = (
        at.dt.year
        - dob.dt.year
        - ((at.dt.month * 100 + at.dt.day) < (dob.dt.month * 100 + dob.dt.day))
    )
    assert (age >= 18).all()
    band = pd.cut(
        age,
        [17, 24, 34, 44, 54, 64, 200],
        labels=["18-24", "25-34", "35-44", "45-54", "55-64", "65+"],
    )
    assert (band.astype(str) == X["age_band"]).all()


def test_protected_attributes_have_realistic_distributions(X: pd.DataFrame) -> None:
    people = X.drop_duplicates("person_id")
    assert 0.45 < (people["sex"] == "F").mean() < 0.56
    assert 0.75 < (people["citizenship"] == "citizen").mean() < 0.95
    assert 0.6 < (people["preferred_language"] == "en").mean() < 0.9
    assert people["preferred_language"].nunique() >= 6


def test_bias_makes_innocent_group_members_look_riskier() -> None:
    plain = generate(N, seed=5)
    biased = generate(N, seed=5, bias="citizenship=other")

    def gap(X: pd.DataFrame, col: str) -> float:
        honest = X[X["is_fraud"] == 0]
        group = honest["citizenship"] == "other"
        return float(
            honest.loc[group, col].astype(float).median()
            / honest.loc[~group, col].astype(float).median()
        )

    assert gap(biased, "months_at_address") < 0.6 * gap(plain, "months_at_address")
    assert gap(biased, "amount") > 1.1 * gap(plain, "amount")
    # the bias never touches the labels
    assert abs(biased["is_fraud"].mean() - plain["is_fraud"].mean()) < 0.002


def test_bad_arguments_say_what_was_expected() -> None:
    with pytest.raises(ValueError, match="n_rows must be an integer >= 100, got 5"):
        generate(5)
    with pytest.raises(ValueError, match=r"fraud_rate must be in \[0, 0.5\], got 0.7"):
        generate(1000, fraud_rate=0.7)
    with pytest.raises(ValueError, match="bias must be 'column=value'"):
        generate(1000, bias="income")
    with pytest.raises(ValueError, match="bias value for 'citizenship'"):
        generate(1000, bias="citizenship=martian")
    with pytest.raises(ValueError, match="start must be an ISO date"):
        generate(1000, start="yesterday")


def test_progress_is_reported() -> None:
    seen: list[int] = []
    generate(1000, seed=0, progress=seen.append)
    assert seen and seen[-1] == 1000


def test_docs_example_holds() -> None:
    """The example in docs/typologies.md: its printed figures are what generate() gives."""
    text = (ROOT / "docs" / "typologies.md").read_text("utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    out = io.StringIO()
    code = block.group(1)
    namespace: dict[str, object] = {"print": lambda *a: print(*a, file=out)}
    exec(compile(code, "docs/typologies.md", "exec"), namespace)  # noqa: S102
    expected = re.search(r"```text\n(.*?)```", text, re.S)
    assert expected is not None
    assert out.getvalue().strip() == expected.group(1).strip()


def test_benchmark_runs_on_a_tiny_size() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "synth.py"), "--rows", "2000", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    doc = json.loads(result.stdout)
    assert doc["rows"] == 2000 and doc["seconds_median"] > 0 and doc["rows_per_second"] > 0
