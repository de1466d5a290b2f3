"""HeapKeeper: a settle frees cyclic garbage, freezes the survivors, and repeats on a loop."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from fraudlens.heap import HeapKeeper, Settled


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (a frozen object's cycles are never freed),
    and runs without Python's automatic collections, which would free its garbage first."""
    gc.unfreeze()
    gc.disable()
    yield
    gc.enable()
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def _not_collected(obj: object) -> bool:
    """True when ``obj`` is in no generation a collection walks (frozen, or untracked)."""
    return all(o is not obj for o in gc.get_objects())


def test_settle_frees_cyclic_garbage_then_freezes_what_lives() -> None:
    dead = _cycle()  # unreachable: only the cyclic collector can free it
    alive = [[i] for i in range(1000)]
    assert dead() is not None and not _not_collected(alive)
    seen: list[Settled] = []
    done = HeapKeeper(every=5.0, observe=seen.append).settle()
    assert dead() is None  # collected before the freeze, not frozen with the rest
    assert done.collected >= 2 and done.seconds >= 0
    assert gc.get_freeze_count() > 1000
    assert seen == [done]
    # the live objects now sit in the permanent generation, which later collections skip
    assert _not_collected(alive) and all(_not_collected(x) for x in alive[:10])
    # reference counting still frees a frozen object that has no cycle
    probe = Node()
    ref = weakref.ref(probe)
    HeapKeeper(every=5.0).settle()
    del probe
    assert ref() is None


def test_objects_made_after_a_settle_are_collected_until_the_next() -> None:
    keeper = HeapKeeper(every=5.0)
    keeper.settle()
    later = [[i] for i in range(100)]
    assert not _not_collected(later)
    dead = _cycle()
    gc.collect()  # collections between settles still free the garbage made since
    assert dead() is None
    keeper.settle()
    assert _not_collected(later)


def test_start_settles_now_and_on_the_loop_until_stopped() -> None:
    seen: list[Settled] = []
    keeper = HeapKeeper(every=0.02, observe=seen.append)

    async def run() -> int:
        keeper.start()
        assert keeper.running and len(seen) == 1  # at start, before the first interval
        await asyncio.sleep(0.2)
        keeper.stop()
        n = len(seen)
        await asyncio.sleep(0.08)
        assert len(seen) == n and not keeper.running
        return n

    n = asyncio.run(run())
    assert n >= 3 and keeper.n_settles == n
    assert all(s.seconds >= 0 for s in seen) and gc.get_freeze_count() > 0


@pytest.mark.parametrize("every", [0, -1.0, float("nan")])
def test_rejects_an_interval_that_is_not_positive(every: float) -> None:
    with pytest.raises(ValueError, match="every must be a number of seconds > 0"):
        HeapKeeper(every=every)


@pytest.mark.parametrize("failure", ["conflict", "scorer_error"])
def test_a_request_that_fails_after_a_settle_leaves_no_garbage(failure: str) -> None:
    """A request waiting on its micro-batch while the heap is settled, then answered with a
    409 (or a failed batch): its future, exception and frame must not form a cycle, which the
    frozen future would keep for good."""
    from scoring.batching import MicroBatcher
    from scoring.results import ClaimConflict

    class Refusing:
        def score_many(self, claims, source):  # type: ignore[no-untyped-def]
            if failure == "scorer_error":
                raise RuntimeError("database down")
            return [ClaimConflict(getattr(c, "claim_id", "C-1")) for c in claims]

    batcher = MicroBatcher(lambda: Refusing())  # type: ignore[arg-type, return-value]
    keeper = HeapKeeper(every=5.0)

    async def request() -> type[BaseException]:  # as the API's handler awaits its answer
        try:
            await batcher.score(object())  # type: ignore[arg-type]
        except (ClaimConflict, RuntimeError) as exc:
            return type(exc)
        raise AssertionError("the request should have failed")

    async def run() -> type[BaseException]:
        # the settle runs once the request waits on its future, before its batch is scored
        asyncio.get_running_loop().call_soon(keeper.settle)
        return await request()

    raised = asyncio.run(run())
    assert raised is (ClaimConflict if failure == "conflict" else RuntimeError)
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        kinds = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not kinds & {"ClaimConflict", "RuntimeError", "Future", "traceback"}, kinds


def test_a_settle_freezes_nothing_when_the_collection_did_not_run(monkeypatch) -> None:
    """``gc.collect()`` does nothing while another thread collects; freezing then would keep
    that garbage for good, so the settle waits for the next time."""
    told: list[bool] = []
    keeper = HeapKeeper(every=5.0, skipped=lambda: told.append(True))
    frozen = gc.get_freeze_count()
    monkeypatch.setattr(gc, "collect", lambda *args: 0)  # as when another thread is collecting
    assert keeper.settle() is None
    assert gc.get_freeze_count() == frozen and keeper.n_skipped == 1 and keeper.n_settles == 0
    assert told == [True]  # the service counts it on /metrics
    monkeypatch.undo()
    assert keeper.settle() is not None and keeper.n_settles == 1


def test_the_timer_survives_a_settle_that_fails() -> None:
    failures: list[str] = []
    calls = {"n": 0}

    def observe(done: Settled) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("metrics down")

    keeper = HeapKeeper(every=0.02, observe=observe)

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: failures.append(str(ctx.get("exception"))))
        keeper.start()
        await asyncio.sleep(0.2)
        assert keeper.running
        keeper.stop()

    asyncio.run(run())
    assert failures == ["metrics down"]  # reported to the loop, which logs it
    assert calls["n"] >= 4  # and the settles went on


def test_only_uvloop_is_a_safe_loop() -> None:
    from fraudlens.heap import safe_loop

    plain = asyncio.new_event_loop()
    try:
        assert not safe_loop(plain)
    finally:
        plain.close()
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (it is on Linux and macOS)")
    fast = uvloop.new_event_loop()
    try:
        assert safe_loop(fast)
    finally:
        fast.close()
