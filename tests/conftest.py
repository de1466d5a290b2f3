"""Shared fixtures: a small trained bundle, and service availability (skip, or fail under CI)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("FRAUDLENS_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("FRAUDLENS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATA_DIR = Path(os.environ.get("FRAUDLENS_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def need_service(name: str, check: Callable[[], object]) -> None:
    """Skip the test when ``name`` is unreachable, or fail when FRAUDLENS_REQUIRE_SERVICES=1."""
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means the service is not there
        message = f"{name} unreachable ({type(exc).__name__}: {exc})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; FRAUDLENS_REQUIRE_SERVICES=1 requires it")
        pytest.skip(f"{message}; set FRAUDLENS_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    def check() -> None:
        from sqlalchemy import create_engine, text

        eng = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()

    need_service("PostgreSQL", check)
    return POSTGRES_URL


@pytest.fixture()
def postgres_engine(postgres_url):
    """An engine on PostgreSQL (built as fraudlens builds its engines) whose tables go to a
    fresh schema, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    from fraudlens.database import make_engine

    schema = f"fl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng = make_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A home with a bundle trained on 8,000 synthetic claims and the identity graph of them.

    Returns ``(settings, history, new)``: the newer claims are not yet scored.
    """
    import graph
    from fraudlens import synth
    from fraudlens.database import make_engine
    from fraudlens.settings import load_settings
    from fraudlens.spec import RecordSpec
    from training.pipeline import TrainConfig, train

    home = tmp_path_factory.mktemp("home")
    settings = load_settings(None, home=home, demo=True)
    spec = RecordSpec.default()
    frame = spec.validate_frame(synth.generate(10_000, seed=5)).accepted
    frame = frame.sort_values("submitted_at", kind="stable").reset_index(drop=True)
    history, new = frame.iloc[:8000].reset_index(drop=True), frame.iloc[8000:].reset_index(drop=True)
    engine = make_engine(settings.db_url)
    state = graph.IdentityGraph.open(engine, settings.identity_key(), spec.identity_kinds)
    feats = state.build(history)
    result = train(history, spec, settings.bundles_root, graph_features=feats,
                   config=TrainConfig(min_positives=10, review_rate=0.05, xgboost_threads=1))
    (settings.bundles_root / "CURRENT").write_text(result.version)
    engine.dispose()
    return settings, history, new
