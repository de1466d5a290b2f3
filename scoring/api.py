"""The scoring API router: POST /v1/score, /v1/score/batch, the current model, health and metrics."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from fraudlens.heap import Settled
from fraudlens.jsontext import finite, json_utf8, parse_json
from fraudlens.spec import Claim
from scoring.batching import MicroBatcher
from scoring.protocols import ApiKeyIdentity, KeyStore
from scoring.results import ClaimConflict, RecordRejected
from scoring.scorer import Scorer

log = logging.getLogger(__name__)

EXAMPLE_CLAIM: dict[str, Any] = {
    "claim_id": "C-2026-000123",
    "submitted_at": "2026-11-02T14:31:07Z",
    "program": "housing",
    "amount": 1450.0,
    "national_id": "123-45-6789",
    "full_name": "Ana Lopez",
    "date_of_birth": "1984-03-09",
    "phone": "(555) 201-3344",
    "email": "ana.lopez@example.org",
    "address": "12 Oak Street Apt 4, Springfield",
    "bank_account": "DE44500105175407324931",
    "device_id": "d-8f2c1a",
    "ip": "203.0.113.24",
    "household_size": 3,
    "declared_income": 21000.0,
    "dependents": 1,
    "months_at_address": 26,
    "channel": "online",
    "region": "north",
    "employment_status": "employed",
}


# --- shapes -------------------------------------------------------------------------------------


class Reason(BaseModel):
    code: str
    sentence: str
    contribution: float
    value: float | None = None
    source: str


class ScorePublic(BaseModel):
    """The answer for one claim. ``decision`` is never a denial: ``review`` sends it to a person."""

    claim_id: str
    risk: float = Field(ge=0, le=1, description="calibrated probability, or outlier percentile (see risk_kind)")
    risk_kind: str
    decision: str = Field(description="clear | review")
    priority: int = Field(description="1 urgent, 2 review, 3 clear")
    reasons: list[Reason]
    model_version: str
    graph_version: str
    detector_scores: dict[str, float | None] = Field(
        description="each detector's score; null where it is not a finite number "
        "(an outlier distance beyond float range)"
    )
    case_id: str | None = None
    explanation: dict[str, Any] | None = None
    scored_at: str | None = Field(None, description="when this claim was first scored (UTC)")


class FieldProblem(BaseModel):
    claim_id: str | None
    field: str
    expected: str
    got: str


class ErrorPublic(BaseModel):
    """Every error has this shape."""

    error: str
    detail: str
    problems: list[FieldProblem] = []


class BatchIn(BaseModel):
    claims: list[dict[str, Any]] = Field(description="claims in the record spec's shape")


class BatchItem(BaseModel):
    index: int
    status: str = Field(description="scored | rejected | conflict")
    result: ScorePublic | None = None
    problems: list[FieldProblem] = []


class BatchOut(BaseModel):
    results: list[BatchItem]
    n_scored: int
    n_rejected: int


class ModelPublic(BaseModel):
    version: str
    created: str
    risk: str
    policy: dict[str, Any]
    feature_names: list[str]
    graph_features: list[str]
    metrics: dict[str, Any]
    graph_version: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "missing or unknown API key"},
    403: {"model": ErrorPublic, "description": "the key lacks the `score` scope"},
    409: {"model": ErrorPublic, "description": "the claim id was scored before with different content"},
    413: {"model": ErrorPublic, "description": "body larger than the configured limit"},
    422: {"model": ErrorPublic, "description": "the claim breaks the record spec: every bad field listed"},
    429: {"model": ErrorPublic, "description": "rate limit for this key; see Retry-After"},
}


# --- the service the router depends on -----------------------------------------------------------


class RateLimiter:
    """A token bucket per key (per worker process): ``per_minute`` requests, bursts up to that."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int | None = None) -> float:
        """0 if allowed, else the seconds to wait. ``per_minute`` overrides the default for this key."""
        capacity = float(per_minute or self.per_minute)
        rate = capacity / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate


@dataclass
class ScoringService:
    """What the scoring router needs; the app factory builds it. ``scorer`` can be swapped live."""

    scorer: Scorer
    keys: KeyStore
    max_batch: int
    rate_limit_per_minute: int
    ready_check: Callable[[], bool] = lambda: True
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    micro_batch: int = 64

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.rate_limit_per_minute)
        self.requests = Counter("fraudlens_requests_total", "requests by route and outcome",
                                ["route", "outcome"], registry=self.registry)
        self.latency = Histogram("fraudlens_request_seconds", "request latency by route and outcome",
                                 ["route", "outcome"],
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                                 registry=self.registry)
        self.decisions = Counter("fraudlens_decisions_total", "decisions by program and decision",
                                 ["program", "decision"], registry=self.registry)
        self.model_info = Gauge("fraudlens_model_info", "the model version being served",
                                ["version"], registry=self.registry)
        self.model_info.labels(self.scorer.model_version).set(1)
        self.batch_sizes = Histogram("fraudlens_score_batch_claims",
                                     "claims per micro-batch of POST /v1/score",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        self.busy = Counter("fraudlens_score_busy_seconds",
                            "seconds this worker spent scoring micro-batches of POST /v1/score "
                            "(its event loop waits meanwhile): the rate is the share of its time "
                            "busy scoring", registry=self.registry)
        # the process's CPU, memory and open files (Linux), beside the share above, and its
        # garbage collections by generation
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.settles = Histogram("fraudlens_gc_settle_seconds",
                                 "seconds each settle of the heap took (a full collection of what "
                                 "is not frozen, then gc.freeze; the event loop waits meanwhile)",
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                                 registry=self.registry)
        self.settles_skipped = Counter("fraudlens_gc_settles_skipped",
                                       "settles of the heap that froze nothing because their "
                                       "collection did not run (another thread was collecting)",
                                       registry=self.registry)
        self.batcher = MicroBatcher(lambda: self.scorer, self.micro_batch, self.batch_sizes.observe,
                                    busy=self.busy.inc)
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._swap_lock = threading.Lock()

    def record(self, route: str, outcome: str, seconds: float) -> None:
        """One more request of ``route`` with ``outcome`` (a decision, or the error code of a
        4xx or 500) that took ``seconds``; the labelled series are looked up once."""
        series = self._series.get((route, outcome))
        if series is None:
            series = self._series[route, outcome] = (
                self.requests.labels(route, outcome),
                self.latency.labels(route, outcome),
            )
        series[0].inc()
        series[1].observe(seconds)

    def settled(self, done: Settled) -> None:
        """Count one settle of the heap (:class:`fraudlens.heap.HeapKeeper`)."""
        self.settles.observe(done.seconds)

    def swap(self, scorer: Scorer) -> None:
        """Serve ``scorer`` from the next request on; requests in flight finish on the old one."""
        with self._swap_lock:
            old = self.scorer
            self.scorer = scorer
            self.model_info.labels(old.model_version).set(0)
            self.model_info.labels(scorer.model_version).set(1)


async def get_service(request: Request) -> ScoringService:
    return request.app.state.scoring  # type: ignore[no-any-return]


ServiceDep = Annotated[ScoringService, Depends(get_service)]


def api_error(status: int, error: str, detail: str, problems: list[dict[str, Any]] | None = None,
              headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status, detail={"error": error, "detail": detail, "problems": problems or []},
                         headers=headers)


def error_code(exc: HTTPException) -> str:
    """The ``error`` code of an error answer (its metrics outcome): ``unauthorized``, ``conflict``..."""
    detail = exc.detail
    return str(detail["error"]) if isinstance(detail, dict) and "error" in detail else f"http_{exc.status_code}"


def authorise(service: ScoringService, headers: Mapping[str, str], scope: str) -> ApiKeyIdentity:
    """The identity of the request's API key if it holds ``scope`` and is within its rate limit.

    Raises the documented 401, 403 or 429 otherwise.
    """
    secret = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        secret = authorization[7:].strip()
    if not secret:
        raise api_error(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                        headers={"WWW-Authenticate": "Bearer"})
    identity = service.keys.verify(secret)
    if identity is None:
        raise api_error(401, "unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if scope not in identity.scopes and "admin" not in identity.scopes:
        raise api_error(403, "forbidden", f"this key lacks the {scope!r} scope")
    limit = identity.rate_limit_per_minute or service.limiter.per_minute
    wait = service.limiter.take(identity.key_id, limit)
    if wait > 0:
        raise api_error(429, "rate_limited", f"rate limit of {limit}/minute for this key",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return identity


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKeyIdentity]]:
    """A dependency checking the request's key (see :func:`authorise`); documents both headers."""

    async def check(
        request: Request,
        service: ServiceDep,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> ApiKeyIdentity:
        return authorise(service, request.headers, scope)

    return check


ScoreKey = Annotated[ApiKeyIdentity, Depends(require_scope("score"))]


def _problems(rejection: Any) -> list[dict[str, Any]]:
    return [{"claim_id": rejection.claim_id, **e.as_dict()} for e in rejection.errors]


# --- routes ---------------------------------------------------------------------------------------

router = APIRouter(tags=["scoring"])


#: The body and key headers of ``POST /v1/score`` as OpenAPI documents them: the route reads the
#: raw body itself (one JSON parse, no per-request dependency tree), so they are declared here.
SCORE_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": "authorization", "in": "header", "required": False,
         "schema": {"type": "string"}, "description": "Bearer <API key>"},
        {"name": "x-api-key", "in": "header", "required": False,
         "schema": {"type": "string"}, "description": "the API key (instead of Authorization)"},
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": True, "title": "Claim",
                       "description": "one claim in the record spec's shape"},
            "examples": {"claim": {"summary": "a housing claim", "value": EXAMPLE_CLAIM}},
        }},
    },
}


def invalid_body(expected: str, got: str) -> HTTPException:
    """The 422 for a body that is not one JSON object (the shape FastAPI's own 422 gets)."""
    return api_error(422, "invalid_body", "the request body is not what this endpoint takes",
                     [{"claim_id": None, "field": "(body)", "expected": expected, "got": got}])


def parse_claim_body(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; raises the documented 422 for anything else."""
    if not body:
        raise invalid_body("a JSON object (one claim)", "nothing")
    try:
        claim = parse_json(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise invalid_body("a JSON object (one claim)", "invalid JSON") from None
    if not isinstance(claim, dict):
        raise invalid_body("a JSON object (one claim)", type(claim).__name__)
    return claim


def json_bytes(content: Any) -> bytes:
    """``content`` as a JSON answer's body: compact UTF-8, a non-finite float as null (Starlette's
    JSONResponse would fail on one: a 500). Written by orjson (about 3 us for a flagged claim's
    answer, against 21 us for ``json.dumps``); the same values as JSONResponse's text."""
    return json_utf8(content)


async def score_body(service: ScoringService, headers: Mapping[str, str], body: bytes) -> bytes:
    """The JSON answer to ``POST /v1/score`` with ``body``; raises the documented 4xx as an
    :class:`HTTPException` (``detail`` is the error body). Both ways in share it: the FastAPI
    route below and the lean path a worker serves it by (:func:`serve_score`)."""
    start = time.perf_counter()
    outcome = "internal"  # an unexpected failure: the caller's logged 500
    try:
        authorise(service, headers, "score")
        claim = parse_claim_body(body)
        scorer = service.scorer
        try:
            # concurrent requests are scored together (scoring/batching.py), each as if alone
            result = await service.batcher.score(scorer.validate(claim))
        except RecordRejected as exc:
            raise api_error(422, "invalid_claim", str(exc), _problems(exc.rejection)) from None
        except ClaimConflict as exc:
            raise api_error(409, "conflict", str(exc)) from None
        outcome = result.decision
        if not result.replayed:
            service.decisions.labels(str(claim.get(scorer.spec.program.column, "")), result.decision).inc()
        return json_bytes(result.as_dict())
    except HTTPException as exc:
        outcome = error_code(exc)
        raise
    finally:
        service.record("score", outcome, time.perf_counter() - start)


@router.post("/v1/score", response_model=ScorePublic, responses=ERRORS, openapi_extra=SCORE_OPENAPI,
             summary="Score one claim: risk, decision, priority and reasons")
async def score(request: Request) -> Response:
    """Validates the claim against the record spec, scores it, logs the decision and, when it is
    flagged, opens a case in the review queue. The same claim sent again returns the same answer
    and the same case; the same ``claim_id`` with different content gets 409."""
    body = await score_body(request.app.state.scoring, request.headers, await request.body())
    return Response(body, media_type="application/json")


# --- the lean path of POST /v1/score ---------------------------------------------------------------

_JSON_HEADERS = [(b"content-type", b"application/json")]
_KEY_HEADERS = (b"authorization", b"x-api-key")


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (else :class:`_BodyTooLarge`)."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send_json(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    raw = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def serve_score(service: ScoringService, scope: Scope, receive: Receive, send: Send, body_limit: int) -> None:
    """``POST /v1/score`` as a plain ASGI call: the same answers, errors and metrics as the
    FastAPI route (both call :func:`score_body`), without the framework's middleware, routing and
    request objects (about a sixth of a worker's CPU at saturation before: see
    docs/benchmarks.md). The app factory's app sends this one route here."""
    start = time.perf_counter()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _KEY_HEADERS}
    try:
        if declared_too_large(scope, body_limit):
            raise _BodyTooLarge
        answer = await score_body(service, headers, await _read_body(receive, body_limit))
    except HTTPException as exc:
        await _send_json(send, exc.status_code, json_bytes(exc.detail), exc.headers)
        return
    except _BodyTooLarge:
        service.record("score", TOO_LARGE, time.perf_counter() - start)
        await _send_json(send, 413, too_large_body(body_limit))
        return
    except _ClientGone:
        return
    except Exception as exc:  # noqa: BLE001 - any failure is a logged 500, never a traceback
        log.exception("unexpected error: %s", type(exc).__name__)
        await _send_json(send, 500, INTERNAL_ERROR)
        return
    await _send_json(send, 200, answer)


#: The body of a 500 (the app's handler for unexpected errors sends the same).
INTERNAL_ERROR = b'{"error":"internal","detail":"internal error; it has been logged","problems":[]}'


def declared_too_large(scope: Scope, limit: int) -> bool:
    """Whether the request's ``Content-Length`` declares a body over ``limit`` bytes."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return declared is not None and declared.isdigit() and int(declared) > limit


#: The metrics outcome of a 413 for a body over the limit (its error code).
TOO_LARGE = "too_large"


def too_large_body(limit: int) -> bytes:
    """The body of a 413 for a request body over ``limit`` bytes."""
    return b'{"error":"too_large","detail":"request body over %d bytes","problems":[]}' % limit


@router.post("/v1/score/batch", response_model=BatchOut, responses=ERRORS,
             summary="Score several claims: one result or one rejection per claim, in order")
async def score_batch(
    service: ServiceDep,
    _key: ScoreKey,
    body: Annotated[BatchIn, Body(openapi_examples={"two": {"summary": "two claims", "value": {"claims": [EXAMPLE_CLAIM, {**EXAMPLE_CLAIM, "claim_id": "C-2026-000124", "amount": -5}]}}})],
) -> Any:
    start = time.perf_counter()
    if len(body.claims) > service.max_batch:
        raise api_error(413, "batch_too_large", f"at most {service.max_batch} claims per batch, got {len(body.claims)}")
    scorer = service.scorer
    items: list[dict[str, Any] | None] = [None] * len(body.claims)
    valid: list[tuple[int, Claim]] = []
    for i, record in enumerate(body.claims):
        try:
            valid.append((i, scorer.validate(record)))
        except RecordRejected as exc:
            items[i] = {"index": i, "status": "rejected", "problems": _problems(exc.rejection)}
    results = scorer.score_many([c for _, c in valid], source="api") if valid else []
    n_scored = 0
    for (i, claim), result in zip(valid, results, strict=True):
        if isinstance(result, ClaimConflict):
            items[i] = {"index": i, "status": "conflict", "problems": [
                {"claim_id": result.claim_id, "field": scorer.spec.id_column,
                 "expected": "identical content for an id already scored", "got": "different content"}]}
            continue
        n_scored += 1
        if not result.replayed:
            service.decisions.labels(claim.program, result.decision).inc()
        # FastAPI's JSONResponse refuses NaN and inf: null, as POST /v1/score answers them
        items[i] = {"index": i, "status": "scored", "result": finite(result.as_dict())}
    service.record("score_batch", "ok", time.perf_counter() - start)
    return {"results": items, "n_scored": n_scored, "n_rejected": len(items) - n_scored}


@router.get("/v1/models/current", response_model=ModelPublic, responses={401: ERRORS[401]},
            summary="The model bundle serving now")
async def current_model(service: ServiceDep, _key: ScoreKey) -> Any:
    scorer = service.scorer
    m = scorer.bundle.manifest
    return {
        "version": m["version"], "created": m["created"], "risk": m["risk"], "policy": m["policy"],
        "feature_names": m["feature_names"], "graph_features": m["graph_features"],
        "metrics": m["metrics"], "graph_version": scorer.graph_version,
    }


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="A model is loaded and the database answers",
            responses={503: {"model": ErrorPublic}})
async def readyz(service: ServiceDep) -> Any:
    try:
        ok = service.ready_check()
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        log.warning("readiness check failed: %s", type(exc).__name__)
        ok = False
    if not ok:
        return JSONResponse({"error": "not_ready", "detail": "database unreachable or no model", "problems": []}, 503)
    return {"status": "ready", "model_version": service.scorer.model_version}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)
