"""Synthetic public-sector claims with planted, labelled fraud and legitimate sharing (hard negatives).

The generator builds a population of people (households, care homes, shelters), gives each a
claim history over several programs, plants fraud typologies (see ``docs/typologies.md``) and
renders everything in the columns of the default record spec (``fraudlens/specs/claims.yaml``).
It is fully vectorised: a million claims take seconds.

>>> X = generate(2000, seed=1)
>>> len(X), int(X["is_fraud"].sum()) > 0, X["submitted_at"].is_monotonic_increasing
(2000, True, True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from fraudlens import _synth_fraud as fraud
from fraudlens import _synth_world as world

log = logging.getLogger(__name__)

COLUMNS = (
    "claim_id",
    "submitted_at",
    "program",
    "amount",
    "national_id",
    "full_name",
    "date_of_birth",
    "phone",
    "email",
    "address",
    "bank_account",
    "device_id",
    "ip",
    "household_size",
    "declared_income",
    "dependents",
    "months_at_address",
    "channel",
    "region",
    "employment_status",
    "age_band",
    "sex",
    "citizenship",
    "disability",
    "preferred_language",
    "is_fraud",
    "typology",
    "ring_id",
    "person_id",
    "sharing",
)
TYPOLOGIES = world.TYPOLOGIES
SHARING = world.SHARING
# Person-level attributes the ``bias`` option can name, with their values.
BIAS_COLUMNS = {
    "sex": world.SEXES,
    "citizenship": world.CITIZENSHIP,
    "disability": ("yes", "no"),
    "preferred_language": world.LANGUAGES,
    "age_band": world.AGE_BANDS,
}
_CHUNK = 262_144  # rows rendered to strings at a time


def generate(
    n_rows: int,
    seed: int = 0,
    *,
    start: str = "2024-01-01",
    days: int = 730,
    fraud_rate: float = 0.02,
    bias: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Generate ``n_rows`` synthetic claims, sorted by ``submitted_at``.

    Parameters
    ----------
    n_rows : int
        Number of claims (at least 100).
    seed : int
        Random seed; the same seed and arguments give the same frame, bit for bit.
    start : str
        First day of the claim window (ISO date, UTC).
    days : int
        Length of the window in days (at least 30).
    fraud_rate : float
        Share of fraudulent claims, in [0, 0.5]. Rings and bursts come whole, so the realised
        rate of a very small frame can differ by a few claims.
    bias : str or None
        ``"column=value"`` (e.g. ``"citizenship=other"``) plants a bias for fairness tests:
        innocent claims of that group look more suspicious (shared housing, higher amounts
        within program norms, shorter ``months_at_address``). Columns: ``sex``,
        ``citizenship``, ``disability``, ``preferred_language``, ``age_band`` (the band at the
        window start).
    progress : callable, optional
        Called with the number of rows rendered so far, after each chunk of rows.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`COLUMNS`; identity and category columns are strings (missing
        where the spec allows), ``submitted_at`` is UTC, ``dependents`` and
        ``months_at_address`` are nullable integers, ``is_fraud`` is 0/1.

    Examples
    --------
    >>> X = generate(1000, seed=1)
    >>> sorted(set(X["typology"])) == sorted(TYPOLOGIES)
    True
    >>> bool(((X["is_fraud"] == 1) == (X["typology"] != "none")).all())
    True
    """
    _check(n_rows, days, fraud_rate)
    start_day = _start_day(start)
    rng = np.random.default_rng(seed)
    the_plan = fraud.plan(rng, round(fraud_rate * n_rows))
    n_legit = n_rows - the_plan.n_rows
    n_pop = min(n_legit, max(1, n_rows // 4))
    n_fab = the_plan.n_fabricated
    people = world.make_people(rng, n_pop + n_fab, n_fab, start_day)
    biased = _bias_mask(people, bias, start_day) & ~people.fabricated
    addresses = world.Addresses.empty()
    world.settle(rng, people, addresses, n_pop, biased, start_day)
    world.settle_fabricated(rng, people, addresses, np.arange(n_pop, n_pop + n_fab, dtype=np.int64))
    legit = world.histories(rng, people, n_pop, n_legit, start_day, days, biased)
    planted = fraud.plant(rng, the_plan, people, legit, n_pop, days)
    rows = world.Rows.concat([legit, planted])
    rows = rows.take(np.argsort(rows.t, kind="stable"))
    log.debug(
        "synth: %d people, %d legitimate and %d fraudulent claims",
        len(people),
        n_legit,
        len(planted),
    )
    return _render(rng, rows, people, addresses, start_day, progress)


def write(frame: pd.DataFrame, path: str | Path) -> None:
    """Write claims to ``path``: Parquet for ``.parquet``, CSV for ``.csv``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Claims, e.g. from :func:`generate`.
    path : str or Path
        Destination; its suffix picks the format.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(p, index=False, engine="pyarrow")
    elif suffix == ".csv":
        frame.to_csv(p, index=False)
    else:
        raise ValueError(f"path must end in .parquet or .csv, got {p.name!r}")


# --- arguments --------------------------------------------------------------------------------


def _check(n_rows: int, days: int, fraud_rate: float) -> None:
    if not isinstance(n_rows, int | np.integer) or n_rows < 100:
        raise ValueError(f"n_rows must be an integer >= 100, got {n_rows!r}")
    if not isinstance(days, int | np.integer) or days < 30:
        raise ValueError(f"days must be an integer >= 30, got {days!r}")
    if not 0.0 <= fraud_rate <= 0.5:
        raise ValueError(f"fraud_rate must be in [0, 0.5], got {fraud_rate!r}")


def _start_day(start: str) -> int:
    try:
        return int(np.datetime64(start, "D").astype(np.int64))
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date like '2024-01-01', got {start!r}") from exc


def _bias_mask(people: world.People, bias: str | None, start_day: int) -> NDArray[np.bool_]:
    """People in the group named by ``bias`` (``"column=value"``); none when ``bias`` is None."""
    if bias is None:
        return np.zeros(len(people), dtype=bool)
    column, sep, value = bias.partition("=")
    column, value = column.strip(), value.strip()
    if not sep or column not in BIAS_COLUMNS:
        raise ValueError(
            f"bias must be 'column=value' with column in {sorted(BIAS_COLUMNS)}, got {bias!r}"
        )
    values = BIAS_COLUMNS[column]
    if value not in values:
        raise ValueError(f"bias value for {column!r} must be one of {list(values)}, got {value!r}")
    code = values.index(value)
    if column == "sex":
        return people.sex == code
    if column == "citizenship":
        return people.citizenship == code
    if column == "disability":
        return people.disability == (value == "yes")
    if column == "preferred_language":
        return people.language == code
    return _age_band(people.dob, np.full(len(people), start_day, dtype=np.int64)) == code


# --- rendering --------------------------------------------------------------------------------


def _age_band(dob: NDArray[np.int64], day: NDArray[np.int64]) -> NDArray[np.int64]:
    """Age band index (0: 18-24 ... 5: 65+) of people born on ``dob`` on ``day`` (epoch days)."""
    b, d = dob.astype("datetime64[D]"), day.astype("datetime64[D]")
    by, dy = b.astype("datetime64[Y]").astype(np.int64), d.astype("datetime64[Y]").astype(np.int64)
    bm, dm = b.astype("datetime64[M]"), d.astype("datetime64[M]")
    bmd = (bm.astype(np.int64) % 12) * 100 + (b - bm.astype("datetime64[D]")).astype(np.int64)
    dmd = (dm.astype(np.int64) % 12) * 100 + (d - dm.astype("datetime64[D]")).astype(np.int64)
    age = dy - by - (dmd < bmd)
    return np.searchsorted(np.array([25, 35, 45, 55, 65]), age, side="right").astype(np.int64)


def _text(values: NDArray[np.int64], width: int = 0) -> pa.Array:
    """Integers as decimal strings, zero-padded to ``width``."""
    s = pc.cast(pa.array(values), pa.string())
    return pc.utf8_lpad(s, width, padding="0") if width else s


def _pool(pool: tuple[str, ...] | list[str], codes: NDArray[np.int64]) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(codes))


def _null_where(arr: pa.Array, missing: NDArray[np.bool_]) -> pa.Array:
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)


def _hex16(values: NDArray[np.int64]) -> pa.Array:
    """64-bit integers as 16 lower-case hex digits."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    codes = np.ascontiguousarray(digits[nibbles.astype(np.int64)])
    return pa.array(codes.view("S16").ravel(), pa.binary(16)).cast(pa.string())


def _email_locals(
    rng: np.random.Generator, people: world.People, first: list[str], last: list[str]
) -> pa.Array:
    """Each person's e-mail local part, in one of eight common styles."""
    n = len(people)
    f = pc.utf8_lower(_pool(first, people.first))
    s = pc.utf8_lower(_pool(last, people.last))
    initial = pc.utf8_slice_codeunits(f, 0, 1)
    two = _text(people.email_tag % 100, 2)
    year = _text(people.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970)
    three = _text(people.email_tag)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    rand = np.ascontiguousarray(letters[rng.integers(0, 36, (n, 9))])
    rand[:, 0] = letters[rng.integers(0, 26, n)]
    random_local = pa.array(rand.view("S9").ravel(), pa.binary(9)).cast(pa.string())
    styles = [
        pc.binary_join_element_wise(f, s, "."),
        pc.binary_join_element_wise(f, s, ""),
        pc.binary_join_element_wise(initial, s, ""),
        pc.binary_join_element_wise(f, s, "_"),
        pc.binary_join_element_wise(f, ".", s, two, ""),
        pc.binary_join_element_wise(f, s, year, ""),
        pc.binary_join_element_wise(f, three, ""),
        random_local,
    ]
    local = pc.choose(pa.array(people.email_style), *styles)
    # e-mail providers refuse a taken address: the later person adds digits
    full = pd.Series(
        pc.binary_join_element_wise(local, _pool(world.EMAIL_DOMAINS, people.email_domain), "@")
    )
    taken = full.duplicated().to_numpy()
    while taken.any():
        extra = _text(rng.integers(10, 10_000, n))
        local = pc.if_else(pa.array(taken), pc.binary_join_element_wise(local, extra, ""), local)
        full = pd.Series(
            pc.binary_join_element_wise(local, _pool(world.EMAIL_DOMAINS, people.email_domain), "@")
        )
        taken = full.duplicated().to_numpy()
    return local


def _render(
    rng: np.random.Generator,
    rows: world.Rows,
    people: world.People,
    addresses: world.Addresses,
    start_day: int,
    progress: Callable[[int], None] | None,
) -> pd.DataFrame:
    """Turn coded claims into the record spec's columns (strings built chunk by chunk)."""
    n = len(rows)
    first, first_m, last, _ = world.name_pools()
    first = first + first_m
    locals_ = _email_locals(rng, people, first, last)
    person_label = rng.permutation(len(people))
    # every random choice of the rendering is drawn here, so chunking never changes the result
    draws = {
        "nid_fmt": rng.choice(3, n, p=[0.86, 0.11, 0.03]),
        "name_fmt": rng.choice(4, n, p=[0.82, 0.06, 0.08, 0.04]),
        "phone_fmt": rng.choice(6, n, p=[0.38, 0.2, 0.2, 0.08, 0.08, 0.06]),
        "email_case": rng.choice(3, n, p=[0.89, 0.08, 0.03]),
        "email_tag": np.where(rng.random(n) < 0.05, rng.integers(0, 5, n), -1),
        "gmail_dots": rng.random(n) < 0.15,
        "type_fmt": rng.choice(3, n, p=[0.55, 0.35, 0.10]),
        "unit_fmt": rng.choice(4, n, p=[0.5, 0.15, 0.15, 0.2]),
        "unit_sep": rng.random(n) < 0.5,
        "addr_upper": rng.random(n) < 0.12,
        "bank_sep": rng.random(n) < 0.1,
        "no_nid": rng.random(n) < 0.02,
        "no_phone": rng.random(n) < 0.04,
        "no_email": rng.random(n) < np.where(rows.channel == world.MAIL, 0.25, 0.05),
        "no_device": rng.random(n) < 0.03,
        "no_ip": rng.random(n) < 0.01,
        "no_dependents": rng.random(n) < 0.05,
        "no_months": rng.random(n) < 0.08,
        "no_employment": rng.random(n) < 0.03,
    }
    day = start_day + rows.t // world.SECONDS_PER_DAY
    strings: dict[str, list[pa.Array]] = {}
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        part = {k: v[lo:hi] for k, v in draws.items()}
        cols = _render_chunk(
            rows.take(np.arange(lo, hi)),
            part,
            people,
            addresses,
            locals_,
            first,
            last,
            person_label,
            day[lo:hi],
            lo,
        )
        for k, v in cols.items():
            strings.setdefault(k, []).append(v)
        if progress is not None:
            progress(hi)
    seconds = (
        (start_day * world.SECONDS_PER_DAY + rows.t)
        .astype("datetime64[s]")
        .astype("datetime64[us]")
    )
    numeric: dict[str, object] = {
        "submitted_at": pd.DatetimeIndex(seconds).tz_localize("UTC"),
        "amount": rows.amount,
        "household_size": rows.household_size.astype(np.int64),
        "declared_income": rows.income,
        "dependents": pd.arrays.IntegerArray(
            rows.dependents.astype(np.int64), draws["no_dependents"]
        ),
        "months_at_address": pd.arrays.IntegerArray(
            rows.months.astype(np.int64), draws["no_months"]
        ),
        "is_fraud": (rows.typology > 0).astype(np.int64),
    }
    data = {
        c: numeric[c] if c in numeric else pa.chunked_array(strings[c], pa.string()).to_pandas()
        for c in COLUMNS
    }
    return pd.DataFrame(data)


def _render_chunk(
    rows: world.Rows,
    d: dict[str, NDArray[Any]],
    people: world.People,
    addresses: world.Addresses,
    locals_: pa.Array,
    first: list[str],
    last: list[str],
    person_label: NDArray[np.int64],
    day: NDArray[np.int64],
    offset: int,
) -> dict[str, pa.Array]:
    """The string columns of one chunk of claims."""
    n = len(rows)
    who = rows.who
    out: dict[str, pa.Array] = {}
    out["claim_id"] = pc.binary_join_element_wise("C", _text(np.arange(offset, offset + n), 9), "")
    out["program"] = _pool(world.PROGRAMS, rows.program)

    nid = people.national_id[who]
    nid_parts = (_text(nid // 1_000_000, 3), _text(nid // 10_000 % 100, 2), _text(nid % 10_000, 4))
    nid_s = pc.binary_join_element_wise(*nid_parts, _pool(("-", "", " "), d["nid_fmt"]))
    out["national_id"] = _null_where(nid_s, d["no_nid"])

    f, s = _pool(first, people.first[who]), _pool(last, people.last[who])
    mid = pc.binary_join_element_wise(
        _pool([chr(65 + i) for i in range(26)], people.middle[who]), ".", ""
    )
    plain = pc.binary_join_element_wise(f, s, " ")
    out["full_name"] = pc.choose(
        pa.array(d["name_fmt"]),
        plain,
        pc.utf8_upper(plain),
        pc.binary_join_element_wise(f, mid, s, " "),
        pc.binary_join_element_wise(s, f, ", "),
    )
    out["date_of_birth"] = pa.array(people.dob[who].astype(np.int32), pa.date32()).cast(pa.string())

    ph = rows.phone
    a, e, line = _text(ph // 10_000_000), _text(ph // 10_000 % 1000, 3), _text(ph % 10_000, 4)
    phone_s = pc.choose(
        pa.array(d["phone_fmt"]),
        pc.binary_join_element_wise("(", a, ") ", e, "-", line, ""),
        pc.binary_join_element_wise("+1", a, e, line, " "),
        pc.binary_join_element_wise(a, e, line, "-"),
        pc.binary_join_element_wise(a, e, line, "."),
        pc.binary_join_element_wise(a, e, line, ""),
        pc.binary_join_element_wise("+1 (", a, ") ", e, "-", line, ""),
    )
    out["phone"] = _null_where(phone_s, (ph == 0) | d["no_phone"])

    owner = np.maximum(rows.email, 0)
    local = locals_.take(pa.array(owner))
    domain_code = people.email_domain[owner]
    gmail = (domain_code == world.GMAIL) & d["gmail_dots"]
    local = pc.if_else(pa.array(gmail), pc.replace_substring(local, ".", ""), local)
    tags = _pool(("benefits", "gov", "claims", "apply", "2024"), np.maximum(d["email_tag"], 0))
    local = pc.if_else(
        pa.array(d["email_tag"] >= 0), pc.binary_join_element_wise(local, tags, "+"), local
    )
    email = pc.binary_join_element_wise(local, _pool(world.EMAIL_DOMAINS, domain_code), "@")
    email = pc.choose(
        pa.array(d["email_case"]), email, pc.utf8_capitalize(email), pc.utf8_upper(email)
    )
    out["email"] = _null_where(email, (rows.email < 0) | d["no_email"])

    ad = rows.address
    type_pool = [
        form
        for full, short in world.STREET_TYPES
        for form in (full, short, short + ("." if short != full else ""))
    ]
    street = pc.binary_join_element_wise(
        _text(addresses.number[ad]),
        _pool(world.STREETS, addresses.street[ad]),
        _pool(type_pool, addresses.kind[ad] * 3 + d["type_fmt"]),
        " ",
    )
    unit = addresses.unit[ad]
    unit_s = pc.binary_join_element_wise(
        _pool((" ", ", "), d["unit_sep"].astype(np.int64)),
        _pool(("Apt ", "Apt. ", "#", "Unit "), d["unit_fmt"]),
        _text(unit),
        "",
    )
    unit_s = pc.if_else(pa.array(unit > 0), unit_s, "")
    address = pc.binary_join_element_wise(
        street, unit_s, ", ", _pool(world.CITIES, addresses.city[ad]), ""
    )
    out["address"] = pc.if_else(pa.array(d["addr_upper"]), pc.utf8_upper(address), address)

    bank = rows.bank
    out["bank_account"] = pc.binary_join_element_wise(
        _pool(world.BANK_ROUTING, bank // 10_000_000_000),
        _text(bank % 10_000_000_000, 10),
        _pool(("-", " "), d["bank_sep"].astype(np.int64)),
    )
    out["device_id"] = _null_where(_hex16(rows.device), (rows.device == 0) | d["no_device"])
    ip = rows.ip
    ip_s = pc.binary_join_element_wise(
        _text(ip >> 24), _text((ip >> 16) & 255), _text((ip >> 8) & 255), _text(ip & 255), "."
    )
    out["ip"] = _null_where(ip_s, (ip == 0) | d["no_ip"])

    out["channel"] = _pool(world.CHANNELS, rows.channel)
    out["region"] = _pool(world.REGIONS, addresses.region(ad))
    out["employment_status"] = _null_where(
        _pool(world.EMPLOYMENT, rows.employment), d["no_employment"]
    )
    out["age_band"] = _pool(world.AGE_BANDS, _age_band(people.dob[who], day))
    out["sex"] = _pool(world.SEXES, people.sex[who])
    out["citizenship"] = _pool(world.CITIZENSHIP, people.citizenship[who])
    out["disability"] = _pool(("no", "yes"), people.disability[who].astype(np.int64))
    out["preferred_language"] = _pool(world.LANGUAGES, people.language[who])
    out["typology"] = _pool(world.TYPOLOGIES, rows.typology)
    ring = pc.binary_join_element_wise("R", _text(np.maximum(rows.ring, 0), 5), "")
    out["ring_id"] = _null_where(ring, rows.ring < 0)
    out["person_id"] = pc.binary_join_element_wise("P", _text(person_label[who], 8), "")
    out["sharing"] = _pool(world.SHARING, rows.sharing)
    return out
