"""The scoring API over a real app (in-process HTTP): answers, errors, keys, retries, no 5xx."""

from __future__ import annotations

import json
import random
import sys

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fraudlens.app import create_app
from fraudlens.database import make_engine
from review.keys import SqlKeyStore
from review.store import ReviewStore


def _record(row: dict, claim_id: str) -> dict:
    rec = {}
    for k, v in row.items():
        if k in ("is_fraud", "typology", "ring_id", "person_id", "sharing"):
            continue
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            continue
        rec[k] = v.isoformat() if hasattr(v, "isoformat") else (v.item() if hasattr(v, "item") else v)
    rec["claim_id"] = claim_id
    return rec


@pytest.fixture(scope="module")
def api(trained):
    settings, _history, new = trained
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"max_body_bytes": 20_000, "max_batch": 5})})
    engine = make_engine(settings.db_url)
    app = create_app(settings, engine=engine)
    keys = SqlKeyStore(engine)
    _, score_key = keys.create("test system", ["score"])
    _, audit_key = keys.create("auditor", ["audit"])
    client = TestClient(app, raise_server_exceptions=False)
    records = [_record(r, f"API-{i}") for i, r in enumerate(new.to_dict("records"))]
    return client, {"Authorization": f"Bearer {score_key}"}, audit_key, records, ReviewStore(engine), app


def test_score_one_claim(api) -> None:
    client, auth, _, records, _, _ = api
    r = client.post("/v1/score", json=records[0], headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["claim_id"] == "API-0"
    assert 0.0 <= body["risk"] <= 1.0
    assert body["decision"] in ("clear", "review")
    assert body["model_version"] and body["graph_version"]
    assert "outlier" in body["detector_scores"]


def test_flagged_claim_has_reasons_and_one_case_on_retry(api) -> None:
    client, auth, _, records, store, _ = api
    flagged = None
    for rec in records[1:400]:
        r = client.post("/v1/score", json=rec, headers=auth)
        assert r.status_code == 200
        if r.json()["decision"] == "review":
            flagged = (rec, r.json())
            break
    assert flagged is not None, "no claim flagged among 400"
    rec, first = flagged
    assert first["reasons"] and first["case_id"]
    assert first["explanation"] is not None
    again = client.post("/v1/score", json=rec, headers=auth).json()
    assert again["risk"] == first["risk"] and again["case_id"] == first["case_id"]
    assert again["decision"] == first["decision"] and again["reasons"] == first["reasons"]
    case = store.by_claim(rec["claim_id"])
    assert case is not None and case.id == first["case_id"]


def test_same_id_different_content_is_409(api) -> None:
    client, auth, _, records, _, _ = api
    rec = dict(records[500], claim_id="API-CONFLICT")
    assert client.post("/v1/score", json=rec, headers=auth).status_code == 200
    r = client.post("/v1/score", json={**rec, "amount": rec["amount"] + 1}, headers=auth)
    assert r.status_code == 409 and r.json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"amount": "a lot"}, "amount"), ({"submitted_at": "2025-02-30"}, "submitted_at"),
     ({"amount": -3}, "amount"), ({"program": None}, "program")],
)
def test_bad_claim_is_422_naming_fields(api, change, field) -> None:
    client, auth, _, records, _, _ = api
    rec = {**records[600], "claim_id": f"API-BAD-{field}", **change}
    r = client.post("/v1/score", json=rec, headers=auth)
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert {p["field"] for p in problems} == {field}
    assert all(p["claim_id"] == rec["claim_id"] and p["expected"] for p in problems)


def test_missing_field_and_masked_identity(api) -> None:
    client, auth, _, records, _, _ = api
    rec = {k: v for k, v in records[601].items() if k != "bank_account"}
    rec["national_id"] = {"raw": "999-88-7777"}
    r = client.post("/v1/score", json=rec, headers=auth)
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["problems"]}
    assert fields == {"bank_account", "national_id"}
    assert "999-88-7777" not in r.text


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b"null", b'"text"', b"", b"\xff\xfe{", b"[" * 10_000, b'{"a": 1} x']
)
def test_malformed_body_is_422(api, body) -> None:
    client, auth, _, _, _, _ = api
    r = client.post("/v1/score", content=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] in ("invalid_body", "invalid_claim")


def test_oversized_body_is_413(api) -> None:
    client, auth, _, records, _, _ = api
    rec = {**records[602], "padding": "x" * 30_000}
    r = client.post("/v1/score", json=rec, headers=auth)
    assert r.status_code == 413 and r.json()["error"] == "too_large"


@pytest.mark.parametrize("path", ["/v1/score", "/v1/score/batch"])
def test_a_streamed_body_over_the_limit_is_413_on_both_routes(api, path) -> None:
    """A body sent in chunks without a Content-Length, past the limit: the documented 413, on
    the batch route too (FastAPI had answered 400 "error parsing the body" there)."""
    client, auth, *_ = api

    def chunks():
        for _ in range(6):
            yield b"x" * 5_000

    r = client.post(path, content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json() == {"error": "too_large", "detail": "request body over 20000 bytes", "problems": []}


def test_keys_401_and_403(api) -> None:
    client, _, audit_key, records, _, _ = api
    assert client.post("/v1/score", json=records[603]).status_code == 401
    assert client.post("/v1/score", json=records[603], headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/v1/score", json=records[603], headers={"X-API-Key": audit_key}).status_code == 403


def test_batch_in_order_with_rejections(api) -> None:
    client, auth, _, records, _, _ = api
    claims = [records[700], {**records[701], "amount": "?"}, records[702]]
    r = client.post("/v1/score/batch", json={"claims": claims}, headers=auth)
    assert r.status_code == 200
    out = r.json()
    assert [i["index"] for i in out["results"]] == [0, 1, 2]
    assert [i["status"] for i in out["results"]] == ["scored", "rejected", "scored"]
    assert out["n_scored"] == 2 and out["n_rejected"] == 1
    too_many = client.post("/v1/score/batch", json={"claims": records[710:716]}, headers=auth)
    assert too_many.status_code == 413


def test_model_health_and_metrics(api) -> None:
    client, auth, _, records, _, _ = api
    assert client.post("/v1/score", json={**records[803], "claim_id": "API-METRICS"}, headers=auth).status_code == 200
    m = client.get("/v1/models/current", headers=auth).json()
    assert m["version"] and m["feature_names"] and "threshold" in m["policy"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    text = client.get("/metrics").text
    assert "fraudlens_requests_total" in text and "fraudlens_request_seconds" in text
    # how busy the worker is scoring, beside the process's CPU
    from prometheus_client.parser import text_string_to_metric_families

    found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert found["fraudlens_score_busy_seconds_total"] > 0
    if sys.platform == "linux":
        assert found["process_cpu_seconds_total"] > 0


def test_openapi_documents_errors_and_examples(api) -> None:
    client, _, _, _, _, _ = api
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/score"]["post"]
    assert {"401", "403", "409", "413", "422", "429"} <= set(op["responses"])
    assert "examples" in json.dumps(op["requestBody"])
    assert {"authorization", "x-api-key"} <= {p["name"] for p in op["parameters"]}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ScorePublic"}


def test_review_queue_page_lists_flagged_claims(api) -> None:
    client, _, _, _, store, _ = api
    page = client.get("/")
    assert page.status_code == 200 and "Flagged claims" in page.text
    case = store.queue(limit=1)[0]
    assert case.claim_id in page.text
    detail = client.get(f"/cases/{case.id}")
    assert detail.status_code == 200 and "Why it was flagged" in detail.text


def test_nothing_a_client_sends_gets_a_5xx(api) -> None:
    client, auth, _, records, _, _ = api
    rng = random.Random(7)
    junk = [None, "", "x", -1, 1e308, True, [], {}, "2025-99-99", "🙂" * 10, 10**30, 10**400]
    base = records[800]
    for i in range(150):
        rec = dict(base, claim_id=f"FUZZ-{i}")
        for _ in range(rng.randint(1, 4)):
            rec[rng.choice(list(base))] = rng.choice(junk)
        r = client.post("/v1/score", json=rec, headers=auth)
        assert r.status_code < 500, (rec, r.text)


def test_an_integer_beyond_any_float_is_a_422_naming_its_field(api) -> None:
    """``float()`` of an integer of 309 digits or more raises OverflowError (a 500 before)."""
    client, auth, _, records, _, _ = api
    for column in ("amount", "household_size"):
        rec = {**records[801], "claim_id": f"API-HUGE-{column}", column: 10**400}
        r = client.post("/v1/score", json=rec, headers=auth)
        assert r.status_code == 422, r.text
        assert [p["field"] for p in r.json()["problems"]] == [column]


@pytest.mark.parametrize("field", ["claim_id", "region", "full_name", "email"])
def test_a_lone_surrogate_escape_is_a_422_naming_its_field_on_both_routes(api, field) -> None:
    """JSON lets a string hold "\\ud800" alone; UTF-8 cannot (a 500 on storing it before)."""
    client, auth, _, records, _, _ = api
    rec = {**records[802], "claim_id": f"API-SUR-{field}"}
    body = json.dumps({**rec, field: "x\\ud800"}).replace("\\\\ud800", "\\ud800")
    assert '"x\\ud800"' in body  # the JSON escape itself, as a client would send it
    one = client.post("/v1/score", content=body, headers={**auth, "content-type": "application/json"})
    assert one.status_code == 422, one.text
    assert [p["field"] for p in one.json()["problems"]] == [field]
    batch = client.post("/v1/score/batch", content=f'{{"claims": [{body}]}}',
                        headers={**auth, "content-type": "application/json"})
    assert batch.status_code == 200, batch.text
    (item,) = batch.json()["results"]
    assert item["status"] == "rejected" and [p["field"] for p in item["problems"]] == [field]


@pytest.mark.parametrize("depth", [50, 1000, 1023])
def test_a_value_nested_deep_is_a_4xx_on_both_routes(api, depth) -> None:
    """orjson reads JSON nested up to 1,024 levels; writing such a value into an error message
    raised RecursionError (a 500 at 984-1,023 levels before)."""
    client, auth, _, records, _, _ = api
    nested = "[" * depth + "]" * depth
    for field in ("claim_id", "amount", "full_name", "region", "typology"):
        rec = {**records[804], "claim_id": f"API-DEEP-{depth}-{field}"}
        body = json.dumps({**rec, field: "__NESTED__"}).replace('"__NESTED__"', nested)
        headers = {**auth, "content-type": "application/json"}
        one = client.post("/v1/score", content=body, headers=headers)
        if field == "typology" and depth < 900:  # a label is kept as its text, as it always was
            assert one.status_code == 200, one.text[:300]
        else:
            assert one.status_code == 422, (field, one.text[:300])
            problems = one.json()["problems"]
            assert [p["field"] for p in problems] == [field] or problems[0]["field"] == "(body)"
        batch = client.post("/v1/score/batch", content=f'{{"claims": [{body}]}}', headers=headers)
        assert batch.status_code < 500, (field, batch.text[:300])


def test_rate_limit_gives_429_with_retry_after(api) -> None:
    client, auth, _, records, _, app = api
    service = app.state.scoring
    from scoring.api import RateLimiter

    saved = service.limiter
    service.limiter = RateLimiter(2)
    try:
        codes = [client.get("/v1/models/current", headers=auth).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        r = client.get("/v1/models/current", headers=auth)
        assert int(r.headers["Retry-After"]) >= 1
    finally:
        service.limiter = saved


def test_concurrent_requests_are_scored_in_micro_batches(api) -> None:
    """Requests in flight together are scored by one Scorer call each batch; each still gets
    its own answer, a conflict its 409, and a bad claim its 422."""
    import asyncio

    import httpx

    _, auth, _, records, _, app = api
    claims = records[800:840]
    changed = {**records[0], "amount": records[0]["amount"] + 1}  # API-0 was scored above

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            posts = [c.post("/v1/score", json=rec, headers=auth) for rec in claims]
            posts.append(c.post("/v1/score", json=changed, headers=auth))
            posts.append(c.post("/v1/score", json={**records[850], "amount": "?"}, headers=auth))
            return await asyncio.gather(*posts)

    before = app.state.scoring.batch_sizes.collect()[0]
    n_before = next(s.value for s in before.samples if s.name.endswith("_count"))
    replies = asyncio.run(main())
    assert [r.status_code for r in replies] == [200] * len(claims) + [409, 422]
    assert [r.json()["claim_id"] for r in replies[: len(claims)]] == [c["claim_id"] for c in claims]
    after = app.state.scoring.batch_sizes.collect()[0]
    n_batches = next(s.value for s in after.samples if s.name.endswith("_count")) - n_before
    assert 1 <= n_batches < len(claims) + 1  # 41 valid claims in fewer calls than claims
    assert "fraudlens_score_batch_claims" in asyncio.run(_metrics(app))


async def _metrics(app) -> str:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return (await c.get("/metrics")).text


def _framework_route(app):
    """The app without its lean path: every request goes through FastAPI's routing."""
    from fastapi import FastAPI

    async def asgi(scope, receive, send):
        await FastAPI.__call__(app, scope, receive, send)

    return TestClient(asgi, raise_server_exceptions=False)


def test_lean_path_answers_as_the_framework_route(api) -> None:
    client, auth, audit_key, records, _, app = api
    route = _framework_route(app)
    # a new claim through each way in, then again through the other: the same answer
    for first, second, rec in ((client, route, records[900]), (route, client, records[901])):
        a = first.post("/v1/score", json=rec, headers=auth)
        b = second.post("/v1/score", json=rec, headers=auth)
        assert a.status_code == b.status_code == 200
        assert a.json() == b.json() and a.headers["content-type"] == b.headers["content-type"]
    conflict = {**records[900], "amount": records[900]["amount"] + 1}
    cases = [
        ({"json": conflict, "headers": auth}, 409),
        ({"json": {**records[902], "claim_id": "API-LEAN-BAD", "amount": "?"}, "headers": auth}, 422),
        ({"content": b"[1, 2]", "headers": auth}, 422),
        ({"content": b"", "headers": auth}, 422),
        ({"json": records[903]}, 401),
        ({"json": records[903], "headers": {"Authorization": "Bearer nope"}}, 401),
        ({"json": records[903], "headers": {"X-API-Key": audit_key}}, 403),
        ({"json": {**records[903], "padding": "x" * 30_000}, "headers": auth}, 413),
    ]
    for kwargs, status in cases:
        a, b = client.post("/v1/score", **kwargs), route.post("/v1/score", **kwargs)
        assert (a.status_code, a.json()) == (b.status_code, b.json()) and a.status_code == status, kwargs
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")


def test_unexpected_failure_is_a_logged_500_on_both_ways_in(api, monkeypatch, caplog) -> None:
    client, auth, _, records, _, app = api
    service = app.state.scoring

    async def broken(_claim):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.batcher, "score", broken)
    for c in (client, _framework_route(app)):
        r = c.post("/v1/score", json={**records[904], "claim_id": "API-500"}, headers=auth)
        assert r.status_code == 500 and r.json() == {
            "error": "internal", "detail": "internal error; it has been logged", "problems": []}
        assert "disk on fire" not in r.text
    assert sum("unexpected error: RuntimeError" in m for m in caplog.messages) == 2


def _strict_json(text: str):
    """The body parsed refusing NaN / Infinity, which are not JSON (clients' parsers refuse them)."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_an_infinite_detector_score_is_null_in_answers_retries_and_the_case_page(api) -> None:
    """An amount of 1e300 is valid; its k-NN distance overflows, so the outlier score is +inf.
    Every way in answers 200 with null for it (never a 500), a retry the same answer, and the
    case page shows it."""
    client, auth, _, records, _, app = api
    rec = {**records[905], "claim_id": "API-HUGE", "amount": 1e300}
    first = client.post("/v1/score", json=rec, headers=auth)
    assert first.status_code == 200, first.text
    body = _strict_json(first.text)
    assert body["detector_scores"]["outlier"] is None and body["detector_scores"]["outlier_risk"] == 1.0
    assert 0.0 <= body["risk"] <= 1.0 and body["decision"] == "review" and body["case_id"]
    again = _framework_route(app).post("/v1/score", json=rec, headers=auth)
    assert again.status_code == 200 and _strict_json(again.text) == body
    other = {**rec, "claim_id": "API-HUGE-2"}
    batch = client.post("/v1/score/batch", json={"claims": [rec, other]}, headers=auth)
    assert batch.status_code == 200, batch.text
    items = _strict_json(batch.text)["results"]
    assert items[0]["result"] == body
    assert items[1]["status"] == "scored" and items[1]["result"]["detector_scores"]["outlier"] is None
    page = client.get(f"/cases/{body['case_id']}")
    assert page.status_code == 200 and "outlier: not a finite number" in page.text


def test_the_largest_amounts_are_scored_and_retried_not_a_500(api) -> None:
    """Amounts whose cents overflow 64 bits (over about 9.2e16, up to the largest float) are
    valid: scored once, and a retry of each is the same claim, not a conflict."""
    client, auth, _, records, _, _ = api
    for i, amount in enumerate((1e17, 1.7976931348623157e308)):
        rec = {**records[906 + i], "claim_id": f"API-MAX-{i}", "amount": amount}
        first = client.post("/v1/score", json=rec, headers=auth)
        assert first.status_code == 200, first.text
        again = client.post("/v1/score", json=rec, headers=auth)
        assert again.status_code == 200 and again.json() == first.json()


def _score_series(client) -> dict[tuple[str, str], float]:
    """POST /v1/score's request counts and latency observation counts by (metric, outcome)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.labels.get("route") != "score":
                continue
            if sample.name in ("fraudlens_requests_total", "fraudlens_request_seconds_count"):
                out[sample.name, sample.labels["outcome"]] = sample.value
    return out


def test_every_answer_of_the_score_route_is_counted_and_timed_by_outcome(api) -> None:
    """Operators see 401s, 429s and 413s, not only decisions: each way in counts each answer
    once, under its decision or its error code, in the counter and the latency histogram."""
    client, auth, audit_key, records, _, app = api
    ok = {**records[907], "claim_id": "API-METRICS-1"}
    sends = [
        ({"json": ok, "headers": auth}, None),
        ({"json": {**ok, "amount": ok["amount"] + 1}, "headers": auth}, "conflict"),
        ({"json": {**records[908], "claim_id": "API-METRICS-2", "amount": "?"}, "headers": auth}, "invalid_claim"),
        ({"content": b"[1, 2]", "headers": auth}, "invalid_body"),
        ({"json": records[908]}, "unauthorized"),
        ({"json": records[908], "headers": {"X-API-Key": audit_key}}, "forbidden"),
        ({"json": {**records[908], "padding": "x" * 30_000}, "headers": auth}, "too_large"),
    ]
    for way in (client, _framework_route(app)):
        before = _score_series(client)
        outcomes = []
        for kwargs, outcome in sends:
            r = way.post("/v1/score", **kwargs)
            outcomes.append(outcome or r.json()["decision"])
        after = _score_series(client)
        for metric in ("fraudlens_requests_total", "fraudlens_request_seconds_count"):
            delta = {o: after.get((metric, o), 0) - before.get((metric, o), 0) for o in set(outcomes)}
            assert delta == {o: outcomes.count(o) for o in set(outcomes)}, (way, metric)
        ok = {**ok, "claim_id": "API-METRICS-3"}
        sends[0] = ({"json": ok, "headers": auth}, None)
        sends[1] = ({"json": {**ok, "amount": ok["amount"] + 1}, "headers": auth}, "conflict")


def test_a_server_app_settles_its_heap_and_reports_it(trained, caplog) -> None:
    """``keep_heap`` (the server worker's app) settles at start-up and every
    ``api.gc_settle_seconds`` on uvloop; on the standard library's loop, whose connections a
    settle would leak, it says so and leaves the heap alone; an app built inside another program
    does not settle at all."""
    import gc
    import time

    from prometheus_client.parser import text_string_to_metric_families

    pytest.importorskip("uvloop", reason="uvloop is not installed (it is on Linux and macOS)")
    settings, _history, _new = trained
    fast = settings.model_copy(update={"api": settings.api.model_copy(update={"gc_settle_seconds": 0.05})})
    engine = make_engine(fast.db_url)
    assert create_app(fast, engine=engine).state.heap is None  # keep_heap is off by default
    off = settings.model_copy(update={"api": settings.api.model_copy(update={"gc_settle_seconds": 0.0})})
    assert create_app(off, engine=engine, keep_heap=True).state.heap is None  # 0 turns it off
    app = create_app(fast, engine=engine, keep_heap=True)
    try:
        with TestClient(app, backend_options={"use_uvloop": True}) as client:
            time.sleep(0.3)
            text = client.get("/metrics").text
            assert app.state.heap.running
        assert not app.state.heap.running  # stopped with the app
        plain = create_app(fast, engine=engine, keep_heap=True)
        with caplog.at_level("WARNING", logger="fraudlens.app"), TestClient(plain):
            time.sleep(0.1)
        assert plain.state.heap.n_settles == 0 and not plain.state.heap.running
        assert "the heap is not settled" in caplog.text
    finally:
        gc.unfreeze()  # a test process must not keep the objects it froze out of collections
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    found = {s.name: s.value for s in samples if not s.labels}
    assert found["fraudlens_gc_settle_seconds_count"] >= 3  # at start-up, then every 0.05 s
    assert "fraudlens_gc_frozen_objects" not in found  # counting them would walk them all
    assert found["fraudlens_gc_settles_skipped_total"] == 0
    full = [s.value for s in samples if s.name == "python_gc_collections_total" and s.labels == {"generation": "2"}]
    assert full and full[0] >= found["fraudlens_gc_settle_seconds_count"]  # a settle is a full collection


def test_the_server_entry_point_keeps_the_heap(trained) -> None:
    """``fraudlens serve`` runs ``fraudlens.asgi:app``: its app settles the heap (in a process
    of its own, so that this one freezes nothing)."""
    import os
    import subprocess

    pytest.importorskip("uvloop", reason="uvloop is not installed (it is on Linux and macOS)")
    settings, _history, _new = trained
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDLENS_")}
    env.update(FRAUDLENS_HOME=str(settings.home), FRAUDLENS_DEMO="1", FRAUDLENS_API__GC_SETTLE_SECONDS="7.5")
    code = (
        "from fraudlens.asgi import app\n"
        "from fastapi.testclient import TestClient\n"
        "with TestClient(app, backend_options={'use_uvloop': True}):\n"
        "    print(app.state.heap.every, app.state.heap.n_settles)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["7.5", "1"]  # the setting, and one settle at start-up
