"""Micro-batching: concurrent ``POST /v1/score`` requests scored together by one Scorer call.

Under load, a worker that scores each request alone pays the fixed costs of one scoring call
(a database transaction for the graph, one for the decision log, a model call) per request.
The :class:`MicroBatcher` gathers the requests that are in flight when the worker becomes free
and scores them with :meth:`Scorer.score_many`, so those costs are paid once per batch. Each
claim still gets exactly the answer it would get alone (the Scorer guarantees it); a quiet
server scores each request as soon as it arrives, since there is nothing to wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fraudlens.spec import Claim
from scoring.results import ClaimConflict, ScoreResult
from scoring.scorer import Scorer


class MicroBatcher:
    """Scores claims submitted from one event loop in batches of at most ``max_batch``.

    Parameters
    ----------
    scorer : callable
        Returns the Scorer to use; called once per batch, so a hot-swapped model serves the
        next batch and a batch is never split between two models.
    max_batch : int
        Most claims scored in one call; 1 scores every request alone.
    observe : callable, optional
        Called with the size of each batch (the service's metrics).
    busy : callable, optional
        Called with the seconds each batch took to score (the event loop is blocked meanwhile):
        their sum over a minute, divided by 60, is the share of the time the worker was busy
        scoring, which says how close it runs to its one core.
    source : str
        The decision log's ``source`` for these claims.
    """

    def __init__(
        self,
        scorer: Callable[[], Scorer],
        max_batch: int = 64,
        observe: Callable[[int], None] | None = None,
        source: str = "api",
        busy: Callable[[float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._scorer = scorer
        self.max_batch = max_batch
        self._observe = observe
        self._busy = busy
        self.source = source
        self._queue: list[tuple[Claim, asyncio.Future[ScoreResult]]] = []
        self._task: asyncio.Task[None] | None = None

    async def score(self, claim: Claim) -> ScoreResult:
        """The claim's result; raises :class:`ClaimConflict` as :meth:`Scorer.score_one` does."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoreResult] = loop.create_future()
        self._queue.append((claim, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        try:
            return await future
        finally:
            # A failed future holds its exception, whose traceback holds this frame: without
            # this the three make a cycle, which a heap settled while the request waited
            # (fraudlens.heap) would never free.
            del future

    async def _drain(self) -> None:
        while self._queue:
            # One turn of the loop lets requests already parsed reach the queue first.
            await asyncio.sleep(0)
            batch = self._queue[: self.max_batch]
            del self._queue[: len(batch)]
            self._score(batch)

    def _score(self, batch: list[tuple[Claim, asyncio.Future[ScoreResult]]]) -> None:
        if self._observe is not None:
            self._observe(len(batch))
        start = time.perf_counter()
        try:
            results = self._scorer().score_many([claim for claim, _ in batch], self.source)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure
            _fail(batch, exc)
            # the exception's traceback holds this frame, so this frame must not hold the
            # futures, which hold the exception: a cycle that a settled heap (fraudlens.heap)
            # would never free
            batch.clear()
            return
        finally:
            if self._busy is not None:
                self._busy(time.perf_counter() - start)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the client went away; the claim is scored and logged anyway
                continue
            if isinstance(result, ClaimConflict):
                future.set_exception(result)
            else:
                future.set_result(result)


def _fail(batch: list[tuple[Claim, asyncio.Future[ScoreResult]]], exc: Exception) -> None:
    """Every request of ``batch`` still waiting gets ``exc``."""
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
