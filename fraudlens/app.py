"""The FastAPI app factory: wires settings, database, bundle, graph, scorer, review queue and routers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import graph
from fraudlens.database import make_engine
from fraudlens.settings import Settings
from review.keys import SqlKeyStore
from review.store import ReviewStore
from review.web import router as review_router
from scoring.api import ScoringService
from scoring.api import router as scoring_router
from scoring.bundle import Bundle, BundleError
from scoring.decision_log import DecisionLog
from scoring.scorer import Scorer

log = logging.getLogger(__name__)

CURRENT = "CURRENT"


def current_bundle_dir(settings: Settings) -> Path:
    """The bundle to serve: ``settings.bundle_dir``, else the one named in ``bundles/CURRENT``."""
    if settings.bundle_dir is not None:
        return settings.bundle_dir
    pointer = settings.bundles_root / CURRENT
    if not pointer.is_file():
        raise BundleError(
            f"no model bundle: set FRAUDLENS_BUNDLE_DIR, or train one (`fraudlens train` or "
            f"`fraudlens demo`) so that {pointer} names it"
        )
    return settings.bundles_root / pointer.read_text("utf-8").strip()


def open_graph(engine: Engine, settings: Settings, bundle: Bundle) -> Any:
    """The identity-graph state in the database, keyed with the configured HMAC key."""
    return graph.IdentityGraph.open(engine, settings.identity_key(), bundle.spec.identity_kinds)


def build_scorer(settings: Settings, engine: Engine, bundle_dir: Path | None = None) -> tuple[Scorer, ReviewStore]:
    bundle = Bundle.load(bundle_dir or current_bundle_dir(settings))
    review = ReviewStore(engine)
    state = open_graph(engine, settings, bundle) if bundle.graph_features else None
    scorer = Scorer(bundle, state, key=settings.identity_key(), log=DecisionLog(engine), sink=review)
    return scorer, review


class BodyLimit:
    """Answers 413 for request bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = (
            b'{"error":"too_large","detail":"request body over %d bytes","problems":[]}' % self.limit
        )
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings, *, engine: Engine | None = None, scorer: Scorer | None = None,
               review: ReviewStore | None = None) -> FastAPI:
    """Build the app. Nothing heavy happens at import; Ray is never started here."""
    engine = engine or make_engine(settings.db_url)
    if scorer is None:
        scorer, review = build_scorer(settings, engine)
    review = review or ReviewStore(engine)
    keys = SqlKeyStore(engine)

    def ready() -> bool:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    app = FastAPI(
        title="fraudlens",
        version="0.1.0",
        description=(
            "Scores public-sector claims for fraud and anomalies and routes flagged ones to "
            "investigators. A `review` decision asks a person to look; fraudlens never denies a "
            "claim by itself. Authenticate with an API key (`Authorization: Bearer <key>`)."
        ),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.review = review
    app.state.scoring = ScoringService(
        scorer=scorer,
        keys=keys,
        max_batch=settings.api.max_batch,
        rate_limit_per_minute=settings.api.rate_limit_per_minute,
        ready_check=ready,
    )
    app.include_router(scoring_router)
    app.include_router(review_router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)  # type: ignore[arg-type]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if not isinstance(detail, dict):
            detail = {"error": "http_error", "detail": str(detail), "problems": []}
        return JSONResponse(detail, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            got = err.get("input")
            problems.append({
                "claim_id": None,
                "field": ".".join(loc) or "(body)",
                "expected": str(err.get("msg", "valid JSON")),
                "got": "nothing" if got is None else type(got).__name__,
            })
        return JSONResponse(
            {"error": "invalid_body", "detail": "the request body is not what this endpoint takes", "problems": problems},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", type(exc).__name__)
        return JSONResponse({"error": "internal", "detail": "internal error; it has been logged", "problems": []},
                            status_code=500)
