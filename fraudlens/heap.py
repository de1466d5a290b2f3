"""Keeps a long-running worker's garbage collections short as its identity graph grows.

CPython's cyclic garbage collector walks every container object it tracks in a full
collection. A server adds a few such objects to the identity graph's in-memory index with each
claim that brings a new identity (its entity, its lists of values), and they live as long as
the process. Left to Python's defaults, full collections then come every few seconds to every
few minutes and take longer as the graph grows: 40-115 ms after 40,000-60,000 claims on the
benchmark's host, with every request waiting meanwhile, and about 0.35-0.45 s for a heap of
half a million objects (each collection walks them all).

:class:`HeapKeeper` *settles* the heap every ``every`` seconds: a full collection of what is
not yet frozen (what the process made since the last settle, so it is short), then
``gc.freeze()``, which moves every surviving object to the permanent generation that later
collections skip. Reference counting still frees frozen objects; what a frozen object can no
longer do is be reclaimed as part of a reference cycle that became garbage after it was frozen.
So the code a settle can catch mid-way must not make such cycles: a request waiting on its
micro-batch when it fails (``scoring.batching``) drops its future before the error leaves it,
and connections are only safe on uvloop, which ``fraudlens serve`` runs on where it is installed
(the standard library's transports hold a bound method of themselves; see :func:`safe_loop`).
Measured on uvloop (``docs/api.md``): no garbage left after load with 409s, 422s, 401s, bad
JSON, batches, the review pages and model swaps.

Nothing here counts the frozen objects: ``gc.get_freeze_count()`` walks the whole permanent
generation, which took about 40 ms in a server holding half a million objects (measured: a
settle that reported the count stopped the event loop that long every 2 s, and the 99th
percentile at 250 requests/s was 29-43 ms against 5.2-7.9 ms without settles). The process's
resident memory on ``/metrics`` is the cheap way to watch for a cycle a settle froze.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Settled:
    """What one settle did: cyclic garbage freed, and the seconds it took."""

    collected: int
    seconds: float


class HeapKeeper:
    """Settles the process's heap now and every ``every`` seconds on an event loop.

    Parameters
    ----------
    every : float
        Seconds between settles (> 0). Each one stops the event loop for as long as a full
        collection of the objects made since the last takes. Every 2 s on the benchmark's host
        (``docs/api.md``): 0.3-0.6 ms at 1,000 requests/s of known identities, 6-21 ms at
        saturation with a new identity in most claims, where Python's own full collections
        took 40-115 ms every 2-4 s.
    observe : callable, optional
        Called with each :class:`Settled` (the service's metrics).
    skipped : callable, optional
        Called when a settle froze nothing because its collection did not run.

    Examples
    --------
    >>> import gc
    >>> keeper = HeapKeeper(every=10.0)
    >>> done = keeper.settle()
    >>> done.seconds >= 0 and gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()  # a doctest should leave the process as it found it
    """

    def __init__(
        self,
        every: float,
        observe: Callable[[Settled], None] | None = None,
        skipped: Callable[[], None] | None = None,
    ) -> None:
        if not every > 0:
            raise ValueError(f"every must be a number of seconds > 0, got {every}")
        self.every = every
        self.observe = observe
        self.skipped = skipped
        self._timer: asyncio.TimerHandle | None = None
        self.n_settles = 0
        self.n_skipped = 0

    def settle(self) -> Settled | None:
        """Collect the garbage among the objects not yet frozen, then freeze the survivors.

        Returns None, freezing nothing, when the collection did not run: ``gc.collect()``
        does nothing while another thread is collecting, and freezing then would keep that
        garbage for good. The next settle tries again.
        """
        start = time.perf_counter()
        before = gc.get_stats()[2]["collections"]
        collected = gc.collect()
        if gc.get_stats()[2]["collections"] == before:
            self.n_skipped += 1
            if self.skipped is not None:
                self.skipped()
            return None
        gc.freeze()
        done = Settled(collected, time.perf_counter() - start)
        self.n_settles += 1
        if self.observe is not None:
            self.observe(done)
        return done

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> Settled | None:
        """Settle now (what start-up made), then every ``every`` seconds on ``loop`` (the
        running loop by default) until :meth:`stop`."""
        loop = loop or asyncio.get_running_loop()
        done = self.settle()
        self._timer = loop.call_later(self.every, self._tick, loop)
        return done

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:  # stopped meanwhile
            return
        try:
            self.settle()  # an error reaches the loop's exception handler, which logs it
        finally:
            self._timer = loop.call_later(self.every, self._tick, loop)


def safe_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True for an event loop whose connections a settle cannot leak: uvloop's (what
    ``fraudlens serve`` runs on where uvloop is installed, as on Linux and macOS).

    The standard library's selector transports hold a bound method of themselves, a cycle: a
    connection open during a settle would never be freed once closed (measured: every one).
    """
    return type(loop).__module__.split(".")[0] == "uvloop"
