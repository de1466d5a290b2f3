"""Name comparison on keyed hashes and blocking keys."""

from graph.keys import KeyedHasher
from graph.normalise import normalise
from graph.resolution import (
    NAME_ELSE,
    NAME_EXACT,
    NAME_FUZZY,
    NAME_SUBSET,
    NameSketcher,
    block_keys,
)


def _level(a: str, b: str) -> int:
    hasher = KeyedHasher(b"r" * 32)
    s = NameSketcher(hasher)
    na, nb = normalise("name", a), normalise("name", b)
    ha, hb = hasher.hash("name", na), hasher.hash("name", nb)
    s.sketch(na, ha)
    s.sketch(nb, hb)
    return s.compare(ha, hb)


def test_comparison_levels():
    assert _level("Maria Garcia", "GARCIA, María") == NAME_EXACT
    assert _level("Maria Elena Garcia", "Maria Garcia") == NAME_SUBSET
    assert _level("Jonathan Smith", "Jonathon Smith") == NAME_FUZZY  # one substitution
    assert _level("Katherine Jones", "Kathrine Jones") == NAME_FUZZY  # one deletion
    assert _level("Jonathan Smith", "Jonathan Smyth") == NAME_FUZZY
    assert _level("Maria Garcia", "Peter Garcia") == NAME_ELSE
    assert _level("Maria Garcia", "Mario Garcie") == NAME_ELSE  # two tokens off: not one person


def test_sketch_stores_only_hashes():
    hasher = KeyedHasher(b"r" * 32)
    s = NameSketcher(hasher)
    n = normalise("name", "Maria Garcia")
    s.sketch(n, hasher.hash("name", n))
    for h, tokens in s.new_names:
        assert isinstance(h, int) and all(isinstance(t, int) for t in tokens)
    for _h, variants in s.new_tokens:
        assert all(isinstance(v, int) for v in variants)


def test_block_keys_follow_rules():
    keys = block_keys({"dob": [1], "address": [2, 3], "phone": [4]})
    assert (0, 1, 2) in keys and (0, 1, 3) in keys and (1, 1, 4) in keys
    assert len(keys) == 3


def test_take_keeps_only_what_is_new_here_as_new_rows():
    """Names sketched in another process join a sketcher as if sketched there."""
    hasher = KeyedHasher(b"r" * 32)
    here, there = NameSketcher(hasher), NameSketcher(hasher)
    known, new = normalise("name", "Maria Garcia"), normalise("name", "Mario Garcia")
    hk, hn = hasher.hash("name", known), hasher.hash("name", new)
    here.sketch(known, hk)
    here.new_names.clear()
    here.new_tokens.clear()
    there.sketch(known, hk)
    there.sketch(new, hn)
    here.take(there.new_names, there.new_tokens)
    assert [h for h, _ in here.new_names] == [hn]
    assert len(here.new_tokens) == 1  # "mario": "garcia" was known here
    assert here.compare(hk, hn) == NAME_FUZZY
    alone = NameSketcher(hasher)
    alone.sketch(known, hk)
    alone.sketch(new, hn)
    assert here.names == alone.names and here.variants == alone.variants


def test_names_another_process_stored_first_are_no_longer_new_rows():
    """A name sketched here, then found in another process's rows at the sync before this one
    writes, is not written again (its row is there: writing it failed on the unique key)."""
    hasher = KeyedHasher(b"r" * 32)
    here, there = NameSketcher(hasher), NameSketcher(hasher)
    shared, own = normalise("name", "Ann Smith"), normalise("name", "Bo Lind")
    hs, ho = hasher.hash("name", shared), hasher.hash("name", own)
    here.sketch(shared, hs)
    here.sketch(own, ho)
    there.sketch(shared, hs)
    there_tokens = {h for h, _ in there.new_tokens}
    here.load(dict(there.new_names), dict(there.new_tokens))
    assert [h for h, _ in here.new_names] == [ho]
    assert {h for h, _ in here.new_tokens}.isdisjoint(there_tokens)
    assert {h for h, _ in here.new_tokens} == {hasher.hash("name_token", t) for t in ("bo", "lind")}
    assert here.compare(hs, hs) == NAME_EXACT
