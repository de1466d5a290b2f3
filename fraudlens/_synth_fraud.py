"""Planting the fraud typologies into the synthetic claims (rings, synthetic and stolen identities, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fraudlens._synth_world import (
    CHILD,
    HOSTING_OCTETS,
    HOUSING,
    MAIL,
    ONLINE,
    PHONE,
    S_NONE,
    SECONDS_PER_DAY,
    TAX,
    TYPOLOGIES,
    UNEMPLOYMENT,
    People,
    Rows,
    new_ips,
    rows_for,
    seconds_of_day,
)

RING, SYNTHETIC, STOLEN, INFLATION, VELOCITY, DUPLICATE = (
    TYPOLOGIES.index(t) for t in TYPOLOGIES[1:]
)
# Share of fraudulent claims per typology (the rest of the planner keeps the total exact).
SHARES = {
    "ring": 0.30,
    "velocity_burst": 0.15,
    "synthetic_identity": 0.15,
    "stolen_identity": 0.15,
    "amount_inflation": 0.15,
    "duplicate_claim": 0.10,
}
_FRAUD_PROGRAM_P = np.array([0.30, 0.20, 0.10, 0.22, 0.18])  # programs fraudsters go for


@dataclass
class Plan:
    """How many fraudulent claims of each typology, and their structure."""

    rings: list[NDArray[np.int64]] = field(default_factory=list)  # claims per identity, per ring
    bursts: list[tuple[int, int]] = field(default_factory=list)  # (claims, identities) per burst
    synthetic: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stolen: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_inflation: int = 0
    n_duplicate: int = 0

    @property
    def n_fabricated(self) -> int:
        """Invented identities needed: ring members, burst identities, synthetic ones, thieves."""
        return int(
            sum(len(r) for r in self.rings)
            + sum(k for _, k in self.bursts)
            + len(self.synthetic)
            + len(self.stolen)
        )

    @property
    def n_rows(self) -> int:
        return int(
            sum(r.sum() for r in self.rings)
            + sum(b for b, _ in self.bursts)
            + self.synthetic.sum()
            + self.stolen.sum()
            + self.n_inflation
            + self.n_duplicate
        )


def plan(rng: np.random.Generator, n_fraud: int) -> Plan:
    """Split ``n_fraud`` fraudulent claims over the typologies (exactly, for ``n_fraud >= 12``).

    Rings (5-50 identities) and velocity bursts (4-25 claims) come whole, so very small
    totals may overshoot by a few claims or leave those two typologies out.
    """
    out = Plan()
    if n_fraud <= 0:
        return out
    if n_fraud >= 12:
        target = round(SHARES["ring"] * n_fraud)
        while target > 0:
            size = int(np.clip(round(rng.lognormal(np.log(10), 0.6)), 5, 50))
            claims = rng.choice([1, 2, 3], size, p=[0.5, 0.35, 0.15])
            if claims.sum() > target:
                size = max(5, min(size, target))
                claims = np.ones(size, dtype=np.int64)
                np.add.at(claims, np.arange(max(0, target - size)) % size, 1)
            out.rings.append(claims.astype(np.int64))
            target -= int(claims.sum())
        target = round(SHARES["velocity_burst"] * n_fraud)
        while target > 0:
            b = int(np.clip(round(rng.lognormal(np.log(8), 0.5)), 4, 25))
            b = b if b <= target else max(4, target)
            k = b if rng.random() < 0.5 else int(rng.integers(1, 4))
            out.bursts.append((b, min(k, b)))
            target -= b
    rest = max(0, n_fraud - out.n_rows)
    names = ["synthetic_identity", "stolen_identity", "amount_inflation", "duplicate_claim"]
    w = np.array([SHARES[k] for k in names])
    quota = rest * w / w.sum()
    counts = np.floor(quota).astype(np.int64)
    counts[np.argsort(counts - quota)[: rest - counts.sum()]] += 1
    if rest >= 4:  # every typology at least once
        while (counts == 0).any():
            counts[np.argmax(counts)] -= 1
            counts[np.argmin(counts)] += 1
    out.synthetic = _split(rng, int(counts[0]), [0.7, 0.3])
    out.stolen = _split(rng, int(counts[1]), [0.6, 0.3, 0.1])
    out.n_inflation, out.n_duplicate = int(counts[2]), int(counts[3])
    return out


def _split(rng: np.random.Generator, total: int, p: list[float]) -> NDArray[np.int64]:
    """Claims per incident (1, 2, ... with probabilities ``p``) summing exactly to ``total``."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    c = rng.choice(np.arange(1, len(p) + 1), total, p=p)
    c = c[: int(np.searchsorted(np.cumsum(c), total)) + 1]
    c[-1] -= int(c.sum()) - total
    return c.astype(np.int64)


def plant(
    rng: np.random.Generator, the_plan: Plan, people: People, legit: Rows, n_pop: int, days: int
) -> Rows:
    """The fraudulent claims of ``the_plan``; fabricated people follow the first ``n_pop``."""
    end = days * SECONDS_PER_DAY - 1
    fab = np.arange(n_pop, len(people), dtype=np.int64)
    parts: list[Rows] = []
    pos = 0
    for r, claims in enumerate(the_plan.rings):
        ids = fab[pos : pos + len(claims)]
        pos += len(claims)
        parts.append(_ring(rng, people, ids, claims, r, days))
    for b, k in the_plan.bursts:
        ids = fab[pos : pos + k]
        pos += k
        parts.append(_burst(rng, people, ids, b, days))
    ids = fab[pos : pos + len(the_plan.synthetic)]
    pos += len(ids)
    parts.append(_synthetic(rng, people, ids, the_plan.synthetic, days))
    thieves = fab[pos : pos + len(the_plan.stolen)]
    parts.append(_stolen(rng, people, thieves, the_plan.stolen, n_pop, days))
    parts.append(_inflation(rng, legit, the_plan.n_inflation))
    parts.append(_duplicate(rng, legit, the_plan.n_duplicate))
    rows = Rows.concat(parts)
    rows.t = np.clip(rows.t, 0, end)
    return rows


def _fraud_program(
    rng: np.random.Generator, people: People, who: NDArray[np.int64]
) -> NDArray[np.int64]:
    program = rng.choice(5, len(who), p=_FRAUD_PROGRAM_P)
    return np.where((program == CHILD) & (people.dependents[who] == 0), TAX, program)


def _mark(rows: Rows, typology: int, ring: int = -1) -> Rows:
    rows.typology[:] = typology
    rows.ring[:] = ring
    rows.sharing[:] = S_NONE
    return rows


def _ring(
    rng: np.random.Generator,
    people: People,
    ids: NDArray[np.int64],
    claims: NDArray[np.int64],
    ring: int,
    days: int,
) -> Rows:
    """A ring: distinct invented identities sharing a few sensitive attributes (2-3 of 5).

    Each shared attribute takes 1-3 values across the ring (more for big rings), held by the
    first members; most members use one of them, a few keep their own.
    """
    s = len(ids)
    who = np.repeat(ids, claims)
    n = len(who)
    start = int(rng.integers(0, max(1, days - 60)))
    active = int(rng.integers(20, 121))
    day = np.minimum(start + rng.integers(0, active, n), days - 1)
    channel = np.where(rng.random(n) < 0.85, ONLINE, MAIL)
    main = rng.choice(5, p=_FRAUD_PROGRAM_P)
    program = np.where(rng.random(n) < 0.8, main, rng.choice(5, n, p=_FRAUD_PROGRAM_P))
    program = np.where((program == CHILD) & (people.dependents[who] == 0), HOUSING, program)
    t = day * SECONDS_PER_DAY + seconds_of_day(rng, channel)
    rows = rows_for(rng, people, who, t, program, channel)
    rows.amount = np.round(rows.amount * rng.uniform(1.0, 1.4, n), 2)
    attrs = rng.choice(5, 2 + int(rng.random() < 0.4), replace=False, p=[0.3, 0.2, 0.2, 0.15, 0.15])
    n_values = 1 + int(s > 15) + int(s > 30)
    for a in attrs:
        holder = ids[rng.integers(0, n_values, s)]
        holder[:n_values] = ids[:n_values]
        own = rng.random(s) < 0.15
        own[:n_values] = False
        holder = np.where(own, ids, holder)
        h = np.repeat(holder, claims)
        if a == 0:
            rows.bank = people.bank[h]
        elif a == 1:
            rows.phone = people.phone[h]
        elif a == 2:
            rows.device = np.where(rows.device != 0, people.device[h], 0)
        elif a == 3:
            rows.address = people.address[h]
            rows.months = np.minimum(rows.months, rng.integers(0, 10, n))
        else:
            rows.ip = np.where(rows.ip != 0, people.home_ip[h], 0)
    return _mark(rows, RING, ring)


def _burst(
    rng: np.random.Generator, people: People, ids: NDArray[np.int64], b: int, days: int
) -> Rows:
    """Many claims within hours or days from one device and one IP (one or many identities)."""
    who = rng.permutation(ids[np.arange(b) % len(ids)])
    t0 = int(rng.integers(0, max(1, days - 4))) * SECONDS_PER_DAY + int(
        rng.integers(0, SECONDS_PER_DAY)
    )
    window = float(rng.uniform(2, 72)) * 3600
    t = t0 + np.sort(rng.uniform(0, window, b)).astype(np.int64)
    channel = np.full(b, ONLINE, dtype=np.int64)
    rows = rows_for(rng, people, who, t, _fraud_program(rng, people, who), channel)
    rows.device[:] = people.device[ids[0]]
    rows.ip[:] = (
        new_ips(rng, 1, HOSTING_OCTETS)[0] if rng.random() < 0.5 else people.home_ip[ids[0]]
    )
    return _mark(rows, VELOCITY)


def _synthetic(
    rng: np.random.Generator,
    people: People,
    ids: NDArray[np.int64],
    claims: NDArray[np.int64],
    days: int,
) -> Rows:
    """Invented people with fresh contact details and no history; 1-2 claims each."""
    who = np.repeat(ids, claims)
    n = len(who)
    first = rng.integers(0, max(1, days - 60), len(ids))
    gap = np.where(_rank(claims) > 0, rng.integers(7, 60, n), 0)
    day = np.minimum(np.repeat(first, claims) + gap, days - 1)
    channel = rng.choice([ONLINE, MAIL, PHONE], n, p=[0.85, 0.1, 0.05])
    t = day * SECONDS_PER_DAY + seconds_of_day(rng, channel)
    rows = rows_for(rng, people, who, t, _fraud_program(rng, people, who), channel)
    rows.amount = np.round(rows.amount * rng.uniform(1.0, 1.6, n), 2)
    hosting = new_ips(rng, n, HOSTING_OCTETS)
    rows.ip = np.where((rows.ip != 0) & (rng.random(n) < 0.3), hosting, rows.ip)
    return _mark(rows, SYNTHETIC)


def _stolen(
    rng: np.random.Generator,
    people: People,
    thieves: NDArray[np.int64],
    claims: NDArray[np.int64],
    n_pop: int,
    days: int,
) -> Rows:
    """A real person's identity (national id, name, dob) with the thief's bank and contacts."""
    k = len(thieves)
    victims = rng.choice(n_pop, k, replace=False) if k <= n_pop else rng.integers(0, n_pop, k)
    who = np.repeat(victims, claims)
    thief = np.repeat(thieves, claims)
    n = len(who)
    day = np.minimum(
        np.repeat(rng.integers(0, max(1, days - 30), k), claims) + rng.integers(0, 30, n), days - 1
    )
    channel = np.where(rng.random(n) < 0.9, ONLINE, PHONE)
    t = day * SECONDS_PER_DAY + seconds_of_day(rng, channel)
    rows = rows_for(rng, people, who, t, _fraud_program(rng, people, who), channel)
    rows.amount = np.round(rows.amount * rng.uniform(1.0, 1.3, n), 2)
    rows.bank = people.bank[thief]
    rows.phone = np.where(rng.random(n) < 0.8, people.phone[thief], rows.phone)
    rows.email = np.where(rng.random(n) < 0.7, thief, rows.email)
    online = channel == ONLINE
    rows.device = np.where(online, people.device[thief], 0)
    rows.ip = np.where(
        online,
        np.where(rng.random(n) < 0.3, new_ips(rng, n, HOSTING_OCTETS), people.home_ip[thief]),
        0,
    )
    moved = rng.random(n) < 0.25
    rows.address = np.where(moved, people.address[thief], rows.address)
    rows.months = np.where(moved, rng.integers(0, 6, n), rows.months)
    return _mark(rows, STOLEN)


def _rank(claims: NDArray[np.int64]) -> NDArray[np.int64]:
    """Position of each claim within its incident (0 for the first)."""
    starts = np.repeat(np.cumsum(claims) - claims, claims)
    return np.arange(int(claims.sum())) - starts


def _inflation(rng: np.random.Generator, legit: Rows, n: int) -> Rows:
    """A real claimant's extra claim at 2.5-5 times their usual amount (not absurd)."""
    rows = legit.take(rng.integers(0, len(legit), n))
    rows.t = rows.t + rng.integers(1, 40, n) * SECONDS_PER_DAY + rng.integers(-3600, 3600, n)
    rows.amount = np.round(rows.amount * rng.uniform(2.5, 5.0, n), 2)
    rows.typology[:] = INFLATION
    return rows


_DUPLICATE_OF = np.array([HOUSING, UNEMPLOYMENT, HOUSING, -1, -1])


def _duplicate(rng: np.random.Generator, legit: Rows, n: int) -> Rows:
    """The same need claimed again in another program: same person, near-identical amount, days apart."""
    pool = np.flatnonzero(np.isin(legit.program, [UNEMPLOYMENT, HOUSING, CHILD]))
    rows = legit.take(
        pool[rng.integers(0, len(pool), n)] if len(pool) else np.zeros(0, dtype=np.int64)
    )
    rows.program = _DUPLICATE_OF[rows.program]
    rows.t = rows.t + rng.integers(0, 72 * 3600, n)
    rows.amount = np.round(rows.amount * rng.uniform(0.985, 1.015, n), 2)
    rows.typology[:] = DUPLICATE
    return rows
