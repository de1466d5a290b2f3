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
    assert done.frozen >= gc.get_freeze_count() > 1000
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
    assert all(s.frozen > 0 for s in seen)


@pytest.mark.parametrize("every", [0, -1.0, float("nan")])
def test_rejects_an_interval_that_is_not_positive(every: float) -> None:
    with pytest.raises(ValueError, match="every must be a number of seconds > 0"):
        HeapKeeper(every=every)
