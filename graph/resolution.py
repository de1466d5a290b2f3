"""Entity resolution: blocking rules and comparison levels over keyed hashes, never raw values.

Names are compared without being stored: a name is kept as the keyed hashes of its tokens,
and each token as the keyed hashes of its *deletion neighbourhood* (the token with each one
letter removed). Two tokens within one edit (a typo, a dropped or swapped letter) share a
member of their neighbourhoods, so typo-tolerant comparison works on hashes alone, and the
stored hashes say no more about a name than the hash of each token would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Indel

from graph.keys import KeyedHasher
from graph.normalise import name_tokens

#: Shortest token compared with typo tolerance (shorter ones must match exactly).
MIN_FUZZY_TOKEN = 4

#: Comparison levels for names, best first (Splink's ordered levels).
NAME_EXACT = 3
NAME_SUBSET = 2
NAME_FUZZY = 1
NAME_ELSE = 0

#: Blocking rules: pairs of kinds whose exact keys make candidate pairs, compared on name.
BLOCKING_RULES: tuple[tuple[str, str], ...] = (
    ("dob", "address"),
    ("dob", "phone"),
    ("dob", "email"),
)


@dataclass(frozen=True, slots=True)
class NameSketch:
    """A name as keyed hashes: the whole name, its tokens, and each token's neighbourhood."""

    name: int
    tokens: tuple[int, ...]


class NameSketcher:
    """Makes :class:`NameSketch` objects and remembers each token's neighbourhood.

    Parameters
    ----------
    hasher : KeyedHasher
        The keyed hasher of the graph.
    """

    def __init__(self, hasher: KeyedHasher) -> None:
        self._hasher = hasher
        self.names: dict[int, tuple[int, ...]] = {}
        self.variants: dict[int, frozenset[int]] = {}
        self._token_cache: dict[str, int] = {}
        #: New rows since the last flush: (name hash, tokens) and (token hash, variants).
        self.new_names: list[tuple[int, tuple[int, ...]]] = []
        self.new_tokens: list[tuple[int, frozenset[int]]] = []

    def sketch(self, normalised_name: str, name_hash: int) -> NameSketch:
        """Hash a normalised name's tokens (and their neighbourhoods, once per token)."""
        tokens = self.names.get(name_hash)
        if tokens is None:
            tokens = tuple(self._token(t) for t in name_tokens(normalised_name))
            self.names[name_hash] = tokens
            self.new_names.append((name_hash, tokens))
        return NameSketch(name_hash, tokens)

    def _token(self, token: str) -> int:
        h = self._token_cache.get(token)
        if h is not None:
            return h
        h = self._hasher.hash("name_token", token)
        self._token_cache[token] = h
        if h not in self.variants:
            if len(token) >= MIN_FUZZY_TOKEN:
                deletions = {token[:i] + token[i + 1 :] for i in range(len(token))}
                variants = frozenset(
                    self._hasher.hash("name_variant", v) for v in deletions | {token}
                )
            else:
                variants = frozenset()
            self.variants[h] = variants
            self.new_tokens.append((h, variants))
        return h

    def load(self, names: dict[int, tuple[int, ...]], variants: dict[int, frozenset[int]]) -> None:
        """Add stored names and token neighbourhoods (from another process or a restart).

        Those sketched here since the last flush and now found stored (another process wrote
        them first, between this one's hashing and its lock) are no longer new rows."""
        self.names.update(names)
        self.variants.update(variants)
        if self.new_names:
            self.new_names[:] = [row for row in self.new_names if row[0] not in names]
        if self.new_tokens:
            self.new_tokens[:] = [row for row in self.new_tokens if row[0] not in variants]

    def take(
        self, names: list[tuple[int, tuple[int, ...]]], tokens: list[tuple[int, frozenset[int]]]
    ) -> None:
        """Take names and token neighbourhoods sketched by another sketcher of the same key (a
        helper process), as if sketched here: those new here are kept and become new rows."""
        for h, variants in tokens:
            if h not in self.variants:
                self.variants[h] = variants
                self.new_tokens.append((h, variants))
        for h, sketch in names:
            if h not in self.names:
                self.names[h] = sketch
                self.new_names.append((h, sketch))

    def compare(self, a: int, b: int) -> int:
        """The comparison level of two stored names (by name hash)."""
        if a == b:
            return NAME_EXACT
        ta, tb = self.names.get(a, ()), self.names.get(b, ())
        return compare_tokens(ta, tb, self.variants)


def compare_tokens(a: Sequence[int], b: Sequence[int], variants: dict[int, frozenset[int]]) -> int:
    """Comparison level of two names given as token hashes.

    ``NAME_SUBSET`` when every token of the shorter name is in the longer one (a dropped
    middle name) and at least two match; ``NAME_FUZZY`` when, after pairing tokens within
    one edit, the token sequences are at least 80 % similar (``rapidfuzz`` Indel similarity on
    the sequences of token hashes), at least two tokens pair up and one of them exactly;
    else ``NAME_ELSE``.
    """
    if not a or not b:
        return NAME_ELSE
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    common = set(short) & set(long_)
    if len(common) == len(set(short)) and len(common) >= 2:
        return NAME_SUBSET
    # Pair each unmatched token of one name with a token of the other within one edit.
    mapped = list(short)
    free = [t for t in long_ if t not in common]
    for i, t in enumerate(short):
        if t in common:
            continue
        vt = variants.get(t)
        if not vt:
            continue
        for j, u in enumerate(free):
            vu = variants.get(u)
            if vu and not vt.isdisjoint(vu):
                mapped[i] = u
                free.pop(j)
                break
    n_paired = sum(1 for t in mapped if t in set(long_))
    if n_paired < 2 or not common:
        return NAME_ELSE
    similarity = Indel.normalized_similarity(sorted(mapped), sorted(long_))
    return NAME_FUZZY if similarity >= 0.8 else NAME_ELSE


def block_keys(keys_by_kind: dict[str, list[int]]) -> list[tuple[int, int, int]]:
    """The blocking keys of one record: ``(rule number, left hash, right hash)`` per rule."""
    out: list[tuple[int, int, int]] = []
    for r, (left, right) in enumerate(BLOCKING_RULES):
        for hl in keys_by_kind.get(left, ()):
            for hr in keys_by_kind.get(right, ()):
                out.append((r, hl, hr))
    return out
