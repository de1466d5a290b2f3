"""The FastAPI app factory: wires settings, database, bundle, graph, scorer, review queue and routers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import graph
from fraudlens.database import WalCheckpointer, make_engine, sqlite_file
from fraudlens.heap import HeapKeeper, safe_loop
from fraudlens.settings import Settings
from review.keys import SqlKeyStore
from review.store import ReviewStore
from review.web import router as review_router
from scoring.api import (
    INTERNAL_ERROR,
    TOO_LARGE,
    ScoringService,
    declared_too_large,
    serve_score,
    too_large_body,
)
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


def open_graph(engine: Engine, settings: Settings, identity_kinds: dict[str, str] | None) -> Any:
    """The identity-graph state in the database, keyed with the configured HMAC key
    (``identity_kinds`` None: those of the stored state).

    ``settings.graph_allow_list`` (a YAML file of registered shared places: care homes,
    shelters, public IPs) keeps legitimate sharing from linking people into rings.
    """
    from graph.commands import load_allow_list

    return graph.IdentityGraph.open(
        engine, settings.identity_key(), identity_kinds, allow_list=load_allow_list(settings.graph_allow_list)
    )


def promote(settings: Settings, version: str) -> Path:
    """Make ``version`` the bundle to serve: verify it loads, then point ``bundles/CURRENT`` at it.

    Running servers notice within :data:`WATCH_SECONDS` and switch without dropping a request.
    """
    root = settings.bundles_root / version
    Bundle.load(root)  # refuses a missing or modified bundle before anything changes
    tmp = settings.bundles_root / f".{CURRENT}.tmp"
    tmp.write_text(version, "utf-8")
    tmp.replace(settings.bundles_root / CURRENT)  # atomic: readers see the old or the new name
    return root


#: How often a server checks ``bundles/CURRENT`` for a promoted bundle.
WATCH_SECONDS = 1.0


class BundleWatcher:
    """Swaps the served Scorer when ``bundles/CURRENT`` names another bundle.

    The new bundle is loaded and verified in this thread; requests keep being answered by the
    old Scorer until the swap, which is one reference assignment. A bundle that fails to load
    is logged and not served.
    """

    def __init__(self, settings: Settings, service: ScoringService, interval: float = WATCH_SECONDS) -> None:
        self.settings = settings
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bundle-watcher", daemon=True)
        self._failed: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """Swap if a different bundle is promoted; True when a swap happened."""
        pointer = self.settings.bundles_root / CURRENT
        try:
            version = pointer.read_text("utf-8").strip()
        except OSError:
            return False
        current = self.service.scorer
        if not version or version == current.model_version or version == self._failed:
            return False
        try:
            bundle = Bundle.load(self.settings.bundles_root / version)
        except Exception as exc:  # noqa: BLE001 - a bad bundle must not stop serving
            log.error("promoted bundle %s not served: %s", version, exc)
            self._failed = version
            return False
        scorer = Scorer(bundle, current.graph, key=current._key, log=current.log, sink=current.sink)
        self.service.swap(scorer)
        log.warning("now serving bundle %s (was %s)", version, current.model_version)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()


def build_scorer(settings: Settings, engine: Engine, bundle_dir: Path | None = None) -> tuple[Scorer, ReviewStore]:
    bundle = Bundle.load(bundle_dir or current_bundle_dir(settings))
    review = ReviewStore(engine)
    state = open_graph(engine, settings, bundle.spec.identity_kinds) if bundle.graph_features else None
    scorer = Scorer(bundle, state, key=settings.identity_key(), log=DecisionLog(engine), sink=review)
    return scorer, review


class BodyLimit:
    """Answers 413 for request bodies over ``limit`` bytes, declared or streamed; ``on_reject``
    (if given) is told of each one (the request's scope, seconds since it arrived)."""

    def __init__(
        self, app: ASGIApp, limit: int, on_reject: Callable[[Scope, float], None] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        if declared_too_large(scope, self.limit):
            await self._reject(scope, send, start)
            return
        seen = 0
        counted = False

        async def limited() -> Message:
            nonlocal seen, counted
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not counted:
                        self._count(scope, start)
                    counted = True
                    # An HTTPException: a FastAPI route reading its body passes it on to the
                    # app's handler (a 413 with this body) instead of calling it a parse error.
                    raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:  # raised where no handler took it; counted when raised
            await self._answer(send)

    async def _reject(self, scope: Scope, send: Send, start: float) -> None:
        self._count(scope, start)
        await self._answer(send)

    def _count(self, scope: Scope, start: float) -> None:
        if self.on_reject is not None:
            self.on_reject(scope, time.perf_counter() - start)

    async def _answer(self, send: Send) -> None:
        body = too_large_body(self.limit)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(StarletteHTTPException):
    """A streamed body passed the limit: the documented 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=json.loads(too_large_body(limit)))


class FraudlensApp(FastAPI):
    """The service's FastAPI app; ``POST /v1/score``, the hot path that integrating systems call
    per claim, is answered by :func:`scoring.api.serve_score` before the framework's middleware
    and routing (same answers, errors and metrics as the documented FastAPI route, which serves it
    when this app is mounted under a prefix)."""

    def __init__(self, *, body_limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/score" and scope["method"] == "POST":
            await serve_score(self.state.scoring, scope, receive, send, self.body_limit)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, engine: Engine | None = None, scorer: Scorer | None = None,
               review: ReviewStore | None = None, keep_heap: bool = False) -> FastAPI:
    """Build the app. Nothing heavy happens at import; Ray is never started here.

    ``keep_heap`` (a server worker's app, :mod:`fraudlens.asgi`) settles the process's heap at
    start-up and every ``settings.api.gc_settle_seconds`` (:class:`fraudlens.heap.HeapKeeper`);
    it freezes every object alive at each settle, so an app built inside another program
    (tests, a notebook) leaves it off.
    """
    checkpointer = None
    if engine is None:
        # the server's own engine: its write-ahead log is copied by a thread, not by requests
        engine = make_engine(settings.db_url, background_checkpoints=True)
        path = sqlite_file(engine)
        if path:
            checkpointer = WalCheckpointer(path, engine)
            checkpointer.start()  # now, not at start-up: a server without lifespan events needs it too
    if scorer is None:
        scorer, review = build_scorer(settings, engine)
    review = review or ReviewStore(engine)
    keys = SqlKeyStore(engine)

    def ready() -> bool:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    service = ScoringService(
        scorer=scorer,
        keys=keys,
        max_batch=settings.api.max_batch,
        rate_limit_per_minute=settings.api.rate_limit_per_minute,
        ready_check=ready,
        micro_batch=settings.api.micro_batch,
    )
    watcher = BundleWatcher(settings, service) if settings.bundle_dir is None else None
    every = settings.api.gc_settle_seconds
    heap = (
        HeapKeeper(every, observe=service.settled, skipped=service.settles_skipped.inc)
        if keep_heap and every > 0
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        if heap is not None:
            loop = asyncio.get_running_loop()
            if safe_loop(loop):
                heap.start(loop)  # last: what start-up made is settled before the first request
            else:
                log.warning(
                    "the heap is not settled on %s (api.gc_settle_seconds needs uvloop, the "
                    "default where it is installed): full garbage collections will take longer "
                    "as the identity graph grows", type(loop).__name__,
                )
        yield
        if heap is not None:
            heap.stop()
        if watcher is not None:
            watcher.stop()
        if checkpointer is not None:
            checkpointer.stop()

    app = FraudlensApp(
        body_limit=settings.api.max_body_bytes,
        lifespan=lifespan,
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
    app.state.scoring = service
    app.state.watcher = watcher
    app.state.heap = heap
    app.include_router(scoring_router)
    app.include_router(review_router)
    _install_error_handlers(app)

    def rejected(scope: Scope, seconds: float) -> None:  # POST /v1/score's 413, as its lean path counts it
        if scope["path"] == "/v1/score" and scope["method"] == "POST":
            service.record("score", TOO_LARGE, seconds)

    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes, on_reject=rejected)  # type: ignore[arg-type]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body: Any = exc.detail
        if not isinstance(body, dict):
            body = {"error": "http_error", "detail": str(body), "problems": []}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

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
    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error: %s", type(exc).__name__)
        return Response(INTERNAL_ERROR, status_code=500, media_type="application/json")
