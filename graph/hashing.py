"""Hashing a claims frame's identity columns, each distinct value once, here or in a helper process.

A batch build hashes its next chunk of claims in a helper process (:class:`HashingHelper`)
while it ingests the current one. The helper sends back only keyed hashes and name sketches
(hashes of tokens), never a raw or normalised value.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from graph.index import Slot, layout_for
from graph.keys import KeyedHasher
from graph.normalise import NormaliseOptions, ip_block, national_id_valid, normalise_many
from graph.resolution import NameSketcher


class FrameKeys(NamedTuple):
    """The keys of a frame's claims: one row per claim, one column per slot (0 = missing)."""

    keys: NDArray[np.int64]
    nid_invalid: NDArray[np.bool_]


class HelperChunk(NamedTuple):
    """What the helper process sends back for one chunk: its keys and the names it sketched."""

    keys: FrameKeys
    names: list[tuple[int, tuple[int, ...]]]
    tokens: list[tuple[int, frozenset[int]]]


class FrameHasher:
    """Normalises and hashes the identity columns of a claims frame, each distinct value once.

    Parameters
    ----------
    layout : sequence of Slot
        The key slots of every claim.
    hasher : KeyedHasher
        The keyed hasher.
    sketcher : NameSketcher
        Sketches each new name (hashes of its tokens) as it is hashed.
    options : NormaliseOptions
        Regional reading rules.
    """

    def __init__(
        self,
        layout: Sequence[Slot],
        hasher: KeyedHasher,
        sketcher: NameSketcher,
        options: NormaliseOptions,
    ) -> None:
        self.layout = tuple(layout)
        self.hasher = hasher
        self.sketcher = sketcher
        self.options = options

    def column(
        self, kind: str, values: pd.Series
    ) -> tuple[NDArray[np.int64], list[str | None], list[int], NDArray[np.intp]]:
        """Keys of one column, with its distinct values normalised, their keys and the codes."""
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        normed = normalise_many(kind, [str(u) for u in uniques], self.options)
        hashes = self.hasher.hash_many(kind, normed)
        table = np.asarray(hashes + [0], dtype=np.int64)  # code -1 (missing) -> 0
        return table[codes], normed, hashes, codes

    def keys(self, X: pd.DataFrame) -> FrameKeys:
        """The key matrix of ``X`` (rows in ``X``'s order) and the invalid-national-id flags."""
        n = len(X)
        columns: list[NDArray[np.int64]] = []
        nid_bad = np.zeros(n, dtype=bool)
        for slot in self.layout:
            if slot.kind == "ip_block":
                continue
            keys, normed, hashes, codes = self.column(slot.kind, X[slot.column])
            columns.append(keys)
            if slot.kind == "name":
                names = self.sketcher.names
                for name, h in zip(normed, hashes, strict=True):
                    if name is not None and h not in names:
                        self.sketcher.sketch(name, h)
            elif slot.kind == "national_id":
                bad = np.asarray(
                    [v is not None and not national_id_valid(v, self.options) for v in normed]
                    + [False]
                )
                nid_bad |= bad[codes]
            elif slot.kind == "ip":
                blocks = [ip_block(v) if v is not None else None for v in normed]
                block_hashes = np.asarray(
                    self.hasher.hash_many("ip_block", blocks) + [0], dtype=np.int64
                )
                columns.append(block_hashes[codes])
        K = np.column_stack(columns) if columns else np.zeros((n, 0), dtype=np.int64)
        return FrameKeys(K, nid_bad)


class HashingHelper:
    """A helper process that hashes chunks of claims while this process ingests others.

    A plain child interpreter that reads pickled chunks on its stdin and writes their
    :class:`HelperChunk` on its stdout, one at a time. Not a ``multiprocessing`` pool: its
    ``spawn`` children re-run the caller's main script, which a library cannot ask of every
    script that builds a graph.

    Parameters
    ----------
    hasher : KeyedHasher
        The keyed hasher (it travels to the helper through the pipe, never through a file).
    identity_columns : dict
        Spec column -> identity kind.
    options : NormaliseOptions
        Regional reading rules.
    """

    def __init__(
        self, hasher: KeyedHasher, identity_columns: dict[str, str], options: NormaliseOptions
    ) -> None:
        root = str(Path(__file__).resolve().parents[1])
        code = "import sys; sys.path.insert(0, sys.argv[1]); import graph.hashing as h; h.serve()"
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", code, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._pending = False
        self._send((hasher, dict(identity_columns), options))

    def _send(self, obj: object) -> None:
        stdin = self._proc.stdin
        assert stdin is not None  # opened as a pipe
        try:
            pickle.dump(obj, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(self._stopped()) from None

    def _stopped(self) -> str:
        return f"the hashing helper process stopped (exit code {self._proc.wait()})"

    def submit(self, X: pd.DataFrame) -> None:
        """Send a chunk (its identity columns) to be hashed."""
        self._send(X)
        self._pending = True

    def result(self) -> HelperChunk:
        """The hashed chunk sent last (waits for it)."""
        stdout = self._proc.stdout
        assert stdout is not None  # opened as a pipe
        self._pending = False
        try:
            status, value = pickle.load(stdout)
        except EOFError:
            raise RuntimeError(self._stopped()) from None
        if status != "ok":
            raise RuntimeError(f"the hashing helper process failed: {value}")
        return cast(HelperChunk, value)

    def close(self) -> None:
        """Stop the helper: it exits when its input closes; one still hashing is killed."""
        if self._pending:  # the caller gave up on the chunk in hand
            self._proc.kill()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with suppress(BrokenPipeError):  # the helper was killed with input unread
                    pipe.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def hash_chunk(frame_hasher: FrameHasher, X: pd.DataFrame) -> HelperChunk:
    """The keys of a chunk and the names first sketched while hashing it (then forgotten as new)."""
    frame_keys = frame_hasher.keys(X)
    sketcher = frame_hasher.sketcher
    out = HelperChunk(frame_keys, list(sketcher.new_names), list(sketcher.new_tokens))
    sketcher.new_names.clear()
    sketcher.new_tokens.clear()
    return out


def serve() -> None:
    """The helper's loop: set-up, then chunks in and hashed chunks out, until its input closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # only pickles go to the pipe
    hasher, identity_columns, options = pickle.load(stdin)
    frame_hasher = FrameHasher(layout_for(identity_columns), hasher, NameSketcher(hasher), options)
    while True:
        try:
            X = pickle.load(stdin)
        except EOFError:
            return
        try:
            out: tuple[str, object] = ("ok", hash_chunk(frame_hasher, X))
        except Exception as exc:  # sent back (its type only: no value may leave in a message)
            out = ("error", type(exc).__name__)
        pickle.dump(out, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
