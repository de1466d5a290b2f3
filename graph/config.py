"""Settings of the identity graph: kind weights, caps, ring rules, the allow-list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from graph.normalise import NormaliseOptions

#: Kinds whose shared values link different entities with an edge (``shares_<kind>``).
LINK_KINDS: tuple[str, ...] = ("bank_account", "phone", "email", "device_id", "ip", "address")
#: Kinds a shared place (an allow-listed or over-cap address: a care home, a shelter) lends
#: its residents: its phone line, tablet, router. A household (an address of at most
#: ``household_max`` entities) explains any sharing among its residents, a bank account too.
PLACE_SHARED_KINDS: tuple[str, ...] = ("phone", "email", "device_id", "ip")


def _default_weights() -> dict[str, float]:
    return {
        "bank_account": 1.0,
        "device_id": 0.8,
        "email": 0.8,
        "phone": 0.6,
        "ip": 0.2,
        "address": 0.1,
    }


def _default_caps() -> dict[str, int]:
    return {
        "bank_account": 50,
        "device_id": 50,
        "email": 20,
        "phone": 20,
        "ip": 20,
        "address": 20,
    }


@dataclass(frozen=True)
class GraphConfig:
    """How the identity graph links, groups and scores.

    Parameters
    ----------
    normalise : NormaliseOptions
        Regional reading rules for phones, dates and national ids.
    weights : dict
        Weight of an edge by kind, for proximity to fraud (PageRank).
    caps : dict
        A value used by more entities than this is a *shared place* (a care home's phone, a
        library IP): it links nobody.
    household_max : int
        Entities at one address up to which the address is a household: sharing it, or a bank
        account among its residents, links nobody. More entities at one (not allow-listed,
        under-cap) address link them all.
    ring_min_members : int
        Entities a group needs to be reported as a suspected ring (it must also share two
        kinds of value, or a bank account).
    burst_hours : float
        A group whose claims all fall within this many hours is reported as a ``burst``.
    name_match_level : int
        Lowest name comparison level that merges two records in a block (1 = fuzzy).
    """

    normalise: NormaliseOptions = field(default_factory=NormaliseOptions)
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    caps: Mapping[str, int] = field(default_factory=_default_caps)
    household_max: int = 4
    ring_min_members: int = 3
    burst_hours: float = 72.0
    name_match_level: int = 1

    def __post_init__(self) -> None:
        for kind in LINK_KINDS:
            if kind not in self.caps or self.caps[kind] < 2:
                raise ValueError(
                    f"caps[{kind!r}] must be an integer >= 2, got {self.caps.get(kind)}"
                )
        if self.ring_min_members < 2:
            raise ValueError(f"ring_min_members must be >= 2, got {self.ring_min_members}")
        if self.household_max < 1:
            raise ValueError(f"household_max must be >= 1, got {self.household_max}")


@dataclass(frozen=True)
class AllowList:
    """Identity values that many people share legitimately: shelters, care homes, public IPs.

    Values are given raw (they are normalised and hashed when the graph opens, never stored)
    or already hashed (``hashed``: kind -> hex hashes, as ``fraudlens graph`` prints them).

    Examples
    --------
    >>> AllowList(values={"address": ["1 Elm Care Home, Springfield"], "ip": ["203.0.113.7"]})
    AllowList(2 values)
    """

    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    hashed: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show raw values
        n = sum(len(v) for v in self.values.values()) + sum(len(v) for v in self.hashed.values())
        return f"AllowList({n} values)"
