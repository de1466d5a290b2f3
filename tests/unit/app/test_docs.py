"""The examples in the user documentation work against a real app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fraudlens.app import create_app
from fraudlens.database import make_engine
from review.keys import SqlKeyStore

DOCS = Path(__file__).resolve().parents[3] / "docs"


def examples(name: str) -> dict[str, str]:
    text = (DOCS / name).read_text()
    return dict(re.findall(r"<!-- example: ([\w-]+) -->\s*```\w*\n(.*?)```", text, flags=re.S))


@pytest.fixture(scope="module")
def client(trained):
    settings, _, _ = trained
    engine = make_engine(settings.db_url)
    _, secret = SqlKeyStore(engine).create("docs", ["score"])
    return TestClient(create_app(settings, engine=engine)), {"Authorization": f"Bearer {secret}"}


def test_api_doc_request_and_response_shapes(client) -> None:
    c, auth = client
    ex = examples("api.md")
    request = json.loads(ex["score-request"])
    documented = json.loads(ex["score-response"])
    r = c.post("/v1/score", json=request, headers=auth)
    assert r.status_code == 200, r.text
    assert set(r.json()) == set(documented)
    assert r.json()["claim_id"] == request["claim_id"]


def test_api_doc_error_example_is_what_the_api_says(client) -> None:
    c, auth = client
    ex = examples("api.md")
    request = {**json.loads(ex["score-request"]), "claim_id": "C-2026-000124", "amount": -5.0}
    r = c.post("/v1/score", json=request, headers=auth)
    assert r.status_code == 422
    assert r.json() == json.loads(ex["error-422"])


def test_audit_doc_query_by_period_reads_the_period_by_its_index(client) -> None:
    """The auditor's example counts a period's decisions by model version through the
    ``scored_at`` index (SQLite's plan says so), here for the week around now."""
    from datetime import UTC, datetime, timedelta

    c, auth = client
    ex = examples("api.md")
    for n in range(3):
        body = {**json.loads(ex["score-request"]), "claim_id": f"C-AUDIT-{n}"}
        assert c.post("/v1/score", json=body, headers=auth).status_code == 200
    sql = examples("audit.md")["decisions-by-period"]
    now = datetime.now(UTC)
    sql = sql.replace("'2026-12-01'", f"'{(now - timedelta(days=6)).date()}'")
    sql = sql.replace("'2026-12-08'", f"'{(now + timedelta(days=1)).date()}'")
    engine = c.app.state.scoring.scorer.log.engine
    with engine.connect() as conn:
        counts = conn.exec_driver_sql(sql).all()
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert sum(n for _, _, n in counts) >= 3
    assert {version for version, _, _ in counts} == {c.app.state.scoring.scorer.model_version}
    assert "ix_decision_log_scored_at" in plan
