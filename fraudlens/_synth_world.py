"""The legitimate world behind the synthetic claims: people, households, places and claim histories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# --- code tables (the strings they stand for are rendered by fraudlens.synth) ---------------

PROGRAMS = ("unemployment", "housing", "child_benefit", "tax_refund", "small_business_grant")
UNEMPLOYMENT, HOUSING, CHILD, TAX, GRANT = range(5)
CHANNELS = ("online", "phone", "in_person", "mail")
ONLINE, PHONE, IN_PERSON, MAIL = range(4)
EMPLOYMENT = ("employed", "unemployed", "self_employed", "retired", "student", "other")
EMPLOYED, UNEMPLOYED, SELF_EMPLOYED, RETIRED, STUDENT, OTHER = range(6)
SEXES = ("F", "M", "X")
CITIZENSHIP = ("citizen", "permanent_resident", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
LANGUAGES = ("en", "es", "zh", "vi", "tl", "ar", "fr", "ko", "ru", "ht", "pt")
LANGUAGE_P = (0.76, 0.14, 0.02, 0.015, 0.012, 0.01, 0.008, 0.008, 0.008, 0.006, 0.006)
TYPOLOGIES = (
    "none",
    "ring",
    "synthetic_identity",
    "stolen_identity",
    "amount_inflation",
    "velocity_burst",
    "duplicate_claim",
)
SHARING = ("none", "household", "care_home", "shelter", "public_ip", "phone_change")
S_NONE, S_HOUSEHOLD, S_CARE_HOME, S_SHELTER, S_PUBLIC_IP, S_PHONE_CHANGE = range(6)

# Names by language group: (female first names, male first names, last names).
_NAMES = {
    "en": (
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty "
        "Sandra Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie "
        "Dorothy Rebecca Sharon Laura Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela "
        "Nicole Samantha Katherine Christine Helen Debra Rachel Carolyn Janet Maria Catherine Heather "
        "Diane Olivia Julie Joyce Victoria Ruth Virginia Lauren Kelly Christina Joan Evelyn Judith",
        "James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel "
        "Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy "
        "Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin "
        "Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry "
        "Tyler Aaron Henry Douglas Peter Adam Nathan Zachary Walter Kyle Harold Carl Jeremy Keith",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Jackson "
        "Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott "
        "Hill Green Adams Nelson Baker Hall Campbell Mitchell Carter Roberts Phillips Evans Turner "
        "Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Bailey Reed "
        "Kelly Howard Cox Ward Richardson Watson Brooks Wood James Bennett Gray Hughes Price Sanders "
        "Myers Long Ross Foster Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson "
        "Barnes Fisher Simmons Graham Jordan Reynolds Hamilton Ford Wallace West Cole Hayes Bryant "
        "Gibson Ellis Stevens Murray Marshall Owens McDonald Harrison Kennedy Wells Warren Dixon",
    ),
    "es": (
        "Maria Guadalupe Juana Rosa Ana Carmen Sofia Isabella Valentina Camila Lucia Daniela Gabriela "
        "Veronica Alejandra Patricia Adriana Leticia Yolanda Elena Marisol Esperanza Lorena Claudia",
        "Jose Juan Luis Carlos Jorge Miguel Antonio Francisco Jesus Alejandro Manuel Pedro Ricardo "
        "Fernando Javier Roberto Eduardo Diego Rafael Sergio Raul Arturo Hector Oscar Mario Ramon",
        "Garcia Rodriguez Martinez Hernandez Lopez Gonzalez Perez Sanchez Ramirez Torres Flores "
        "Rivera Gomez Diaz Reyes Morales Cruz Ortiz Gutierrez Chavez Ramos Ruiz Alvarez Mendoza "
        "Castillo Jimenez Moreno Romero Herrera Medina Aguilar Vargas Castro Guzman Fernandez Soto",
    ),
    "zh": (
        "Mei Li Xiu Ying Hui Jing Fang Yan Ling Hong Xia Lan Yun Min Wei Qing",
        "Wei Jun Hao Lei Jian Ming Tao Yong Qiang Bin Chao Gang Peng Feng Bo Kai",
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lin He Gao Luo",
    ),
    "vi": (
        "Linh Lan Mai Huong Thao Trang Ngoc Anh Hoa Thu Hanh Phuong",
        "Minh Tuan Hung Dung Long Nam Duc Quang Khanh Thanh Hieu Bao",
        "Nguyen Tran Le Pham Hoang Phan Vu Vo Dang Bui Do Ho Ngo Duong Ly",
    ),
    "ar": (
        "Fatima Aisha Mariam Nour Layla Zainab Huda Rania Salma Yasmin Amira Hana",
        "Mohammed Ahmed Ali Omar Hassan Youssef Khalid Ibrahim Mustafa Karim Tariq Samir",
        "Haddad Khoury Nasser Saleh Hamdan Aziz Mansour Farah Rahman Hussein Abboud Kassem",
    ),
}
# Which name group each language draws from.
_LANG_GROUP = {"en": "en", "es": "es", "zh": "zh", "vi": "vi", "ar": "ar", "pt": "es"}

REGIONS = (
    "Capital",
    "North Coast",
    "South Coast",
    "Lakes",
    "River Valley",
    "High Plains",
    "Pine Hills",
    "Harbor",
    "Eastern Shore",
    "Western Range",
    "Midlands",
    "Delta",
    "Northern Forest",
    "Desert",
    "Islands",
)
REGION_P = (
    0.16,
    0.09,
    0.09,
    0.07,
    0.08,
    0.05,
    0.05,
    0.08,
    0.06,
    0.05,
    0.07,
    0.05,
    0.03,
    0.04,
    0.03,
)
CITIES = [
    "Fairview",
    "Riverton",
    "Georgetown",
    "Franklin",
    "Greenville",
    "Bristol",
    "Clinton",
    "Salem",
    "Madison",
    "Springfield",
    "Ashland",
    "Oxford",
    "Dover",
    "Milton",
    "Newport",
    "Kingston",
    "Burlington",
    "Manchester",
    "Lexington",
    "Auburn",
    "Hudson",
    "Marion",
    "Chester",
    "Arlington",
    "Winchester",
    "Dayton",
    "Lancaster",
    "Jackson",
    "Clayton",
    "Harrison",
    "Belmont",
    "Cleveland",
    "Fulton",
    "Hamilton",
    "Lincoln",
    "Monroe",
    "Plymouth",
    "Trenton",
    "Vernon",
    "Warren",
    "Oakland",
    "Bedford",
    "Danville",
    "Easton",
    "Glendale",
    "Hanover",
    "Jamestown",
    "Lebanon",
    "Mayfield",
    "Norwood",
    "Princeton",
    "Quincy",
    "Richmond",
    "Sheffield",
    "Troy",
    "Union",
    "Waverly",
    "Weston",
    "Woodstock",
    "Yorktown",
]
CITY_REGION = np.arange(len(CITIES)) % len(REGIONS)
# Three real North American area codes per region, so phone numbers parse as valid.
AREA_CODES = np.array(
    [201, 202, 203, 205, 206, 207, 208, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225]
    + [228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 272]
    + [276, 281, 301, 302, 303, 304, 305, 307, 308],
    dtype=np.int64,
)
STREETS = [
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Main",
    "Park",
    "Walnut",
    "Sunset",
    "Lincoln",
    "Jackson",
    "Church",
    "Spring",
    "Ridge",
    "Meadow",
    "Forest",
    "River",
    "Highland",
    "Willow",
    "Chestnut",
    "Franklin",
    "Jefferson",
    "Adams",
    "Madison",
    "Center",
    "Mill",
    "Cherry",
    "Birch",
    "Spruce",
    "Poplar",
    "Dogwood",
    "Magnolia",
    "Hickory",
    "Laurel",
    "Sycamore",
    "Aspen",
    "Holly",
    "Valley",
    "View",
    "Prospect",
    "Orchard",
    "Grove",
    "Bridge",
    "Railroad",
    "Water",
    "School",
    "Front",
    "Broad",
    "Market",
    "King",
    "Queen",
    "Union",
    "Liberty",
    "Harbor",
    "Bay",
    "Shore",
    "Canyon",
    "Mountain",
    "Summit",
    "Country",
    "Garden",
    "Fairway",
    "Greenway",
    "Heritage",
    "Pleasant",
    "Rose",
    "Lilly",
    "Heather",
    "Ivy",
    "Juniper",
    "Cypress",
    "Beech",
    "Locust",
]
STREET_TYPES = (
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Drive", "Dr"),
    ("Lane", "Ln"),
    ("Court", "Ct"),
    ("Boulevard", "Blvd"),
    ("Place", "Pl"),
    ("Way", "Way"),
    ("Terrace", "Ter"),
    ("Circle", "Cir"),
)
EMAIL_DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "comcast.net",
    "att.net",
    "proton.me",
    "mail.com",
    "gmx.com",
]
EMAIL_DOMAIN_P = (0.40, 0.14, 0.10, 0.10, 0.08, 0.05, 0.04, 0.03, 0.02, 0.02, 0.02)
GMAIL = 0
BANK_ROUTING = [
    "021000021",
    "026009593",
    "121000248",
    "111000025",
    "122000661",
    "071000013",
    "091000019",
    "031176110",
    "053000196",
    "063100277",
    "061000104",
    "044000037",
    "081000210",
    "101000019",
    "102000076",
    "043000096",
]
# First octets: residential broadband, mobile carriers, hosting providers.
RESIDENTIAL_OCTETS = np.array(
    [24, 47, 50, 67, 68, 69, 71, 73, 75, 76, 96, 97, 98, 99, 107, 108, 174]
)
MOBILE_OCTETS = np.array([166, 172, 174, 100])
HOSTING_OCTETS = np.array([45, 104, 138, 139, 159, 167, 185, 198])

SECONDS_PER_DAY = 86_400


def name_pools() -> tuple[
    list[str], list[str], list[str], dict[str, tuple[int, int, int, int, int, int]]
]:
    """Concatenated first-name (F, M) and last-name pools, and each group's slice offsets."""
    first_f: list[str] = []
    first_m: list[str] = []
    last: list[str] = []
    offsets: dict[str, tuple[int, int, int, int, int, int]] = {}
    for group, (f, m, s) in _NAMES.items():
        fs, ms, ss = f.split(), m.split(), s.split()
        offsets[group] = (len(first_f), len(fs), len(first_m), len(ms), len(last), len(ss))
        first_f += fs
        first_m += ms
        last += ss
    return first_f, first_m, last, offsets


def zipf_index(rng: np.random.Generator, n: int, size: int, s: float = 0.9) -> NDArray[np.int64]:
    """Indices in [0, size) with a Zipf-like skew (common names and streets are common)."""
    w = 1.0 / (np.arange(size) + 3.0) ** s
    return rng.choice(size, n, p=w / w.sum()).astype(np.int64)


def unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> NDArray[np.int64]:
    """``n`` distinct integers drawn uniformly in [low, high) (redrawing the few collisions)."""
    x = rng.integers(low, high, n, dtype=np.int64)
    while True:
        _, first = np.unique(x, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return x
        x[dup] = rng.integers(low, high, int(dup.sum()), dtype=np.int64)


def categorical(rng: np.random.Generator, p: NDArray[np.float64]) -> NDArray[np.int64]:
    """One draw per row of a row-stochastic matrix ``p`` (n, k): the chosen column index."""
    c = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * c[:, -1:]
    return np.minimum((u > c).sum(axis=1), p.shape[1] - 1).astype(np.int64)


def new_phones(rng: np.random.Generator, n: int, region: NDArray[np.int64]) -> NDArray[np.int64]:
    """Distinct ten-digit North American numbers whose area code belongs to ``region``."""
    area = AREA_CODES[(region * 3 + rng.integers(0, 3, n)) % len(AREA_CODES)]
    x = unique_ints(rng, n, 0, 8_000_000)
    exch = 200 + x // 10_000
    exch = np.where(exch % 100 == 11, exch + 1, exch)
    exch = np.where(exch == 555, 556, exch)
    return area * 10_000_000 + exch * 10_000 + x % 10_000


def new_ips(rng: np.random.Generator, n: int, octets: NDArray[np.int64]) -> NDArray[np.int64]:
    """IPv4 addresses as integers, first octet drawn from ``octets``."""
    first = octets[rng.integers(0, len(octets), n)]
    return first * 16_777_216 + rng.integers(1 << 8, (1 << 24) - 1, n)


def new_banks(rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    """Distinct bank accounts as ``routing_index * 10**10 + account_number``."""
    acct = unique_ints(rng, n, 10_000_000, 10_000_000_000)
    return rng.integers(0, len(BANK_ROUTING), n) * 10_000_000_000 + acct


def new_devices(rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    """Distinct device fingerprints (64-bit integers, rendered as 16 hex digits)."""
    return unique_ints(rng, n, 1 << 60, (1 << 63) - 1)


@dataclass
class Addresses:
    """Postal addresses as code arrays: house number, street, street type, unit (0 none), city."""

    number: NDArray[np.int64]
    street: NDArray[np.int64]
    kind: NDArray[np.int64]
    unit: NDArray[np.int64]
    city: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.number)

    def extend(
        self, rng: np.random.Generator, n: int, region: NDArray[np.int64] | None = None
    ) -> NDArray[np.int64]:
        """Append ``n`` new distinct addresses (in ``region`` when given); return their ids."""
        if region is None:
            region = rng.choice(len(REGIONS), n, p=np.asarray(REGION_P) / sum(REGION_P))
        per_region = len(CITIES) // len(REGIONS)
        city = region + len(REGIONS) * rng.integers(0, per_region, n)
        street = zipf_index(rng, n, len(STREETS), 0.6)
        kind = rng.choice(len(STREET_TYPES), n, p=_normalise([30, 22, 14, 12, 8, 4, 3, 3, 2, 1, 1]))
        unit = np.where(rng.random(n) < 0.3, rng.integers(1, 60, n), 0)
        number = np.exp(rng.uniform(0.0, 9.2, n)).astype(np.int64) + 1
        keys = self._keys(number, street, kind, unit, city)
        known = set(self._keys(self.number, self.street, self.kind, self.unit, self.city).tolist())
        while True:  # make every new address distinct from all others
            _, first = np.unique(keys, return_index=True)
            clash = np.ones(n, dtype=bool)
            clash[first] = False
            if known:
                clash |= np.isin(keys, np.fromiter(known, dtype=np.int64))
            if not clash.any():
                break
            number[clash] = rng.integers(1, 9999, int(clash.sum()))
            keys = self._keys(number, street, kind, unit, city)
        start = len(self)
        self.number = np.concatenate([self.number, number])
        self.street = np.concatenate([self.street, street])
        self.kind = np.concatenate([self.kind, kind])
        self.unit = np.concatenate([self.unit, unit])
        self.city = np.concatenate([self.city, city])
        return np.arange(start, start + n, dtype=np.int64)

    @staticmethod
    def _keys(
        number: NDArray[np.int64],
        street: NDArray[np.int64],
        kind: NDArray[np.int64],
        unit: NDArray[np.int64],
        city: NDArray[np.int64],
    ) -> NDArray[np.int64]:
        return (((number * 128 + street) * 16 + kind) * 64 + unit) * 64 + city

    @classmethod
    def empty(cls) -> Addresses:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), z.copy(), z.copy(), z.copy())

    def region(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        return CITY_REGION[self.city[ids]]


def _normalise(w: Sequence[float]) -> NDArray[np.float64]:
    a = np.asarray(w, dtype=np.float64)
    return a / a.sum()


@dataclass
class People:
    """Everyone behind the claims, real or fabricated, one entry per person (codes, not strings)."""

    fabricated: NDArray[np.bool_]
    language: NDArray[np.int64]
    sex: NDArray[np.int64]
    citizenship: NDArray[np.int64]
    dob: NDArray[np.int64]  # days since 1970-01-01
    disability: NDArray[np.bool_]
    employment: NDArray[np.int64]
    income: NDArray[np.float64]
    first: NDArray[np.int64]  # index into the female + male first-name pool
    middle: NDArray[np.int64]  # letter index 0-25
    last: NDArray[np.int64]
    email_style: NDArray[np.int64]
    email_domain: NDArray[np.int64]
    email_tag: NDArray[np.int64]  # random digits for styles that carry them
    national_id: NDArray[np.int64]
    phone: NDArray[np.int64]
    phone2: NDArray[np.int64]  # the number after a phone change
    bank: NDArray[np.int64]
    device: NDArray[np.int64]
    device2: NDArray[np.int64]
    home_ip: NDArray[np.int64]
    channel: NDArray[np.int64]  # preferred channel
    level: NDArray[np.float64]  # person-level multiplier on amounts
    # filled by households (or by the fraud planner for fabricated people)
    address: NDArray[np.int64]
    household_size: NDArray[np.int64]
    dependents: NDArray[np.int64]
    move_in: NDArray[np.int64]  # day (relative to the window start) the person moved in
    place: NDArray[np.int64]  # S_NONE / S_HOUSEHOLD / S_CARE_HOME / S_SHELTER
    place_device: NDArray[np.int64]  # device/IP of a care home or shelter (0: none)
    place_ip: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.sex)


def make_people(rng: np.random.Generator, n: int, n_fabricated: int, start_day: int) -> People:
    """Draw ``n`` people; the last ``n_fabricated`` are identities a fraudster invented.

    Fabricated people are drawn from the same distributions (protected attributes included),
    except that their e-mail addresses look freshly made more often.
    """
    fabricated = np.zeros(n, dtype=bool)
    fabricated[n - n_fabricated :] = True
    language = rng.choice(len(LANGUAGES), n, p=_normalise(LANGUAGE_P))
    sex = rng.choice(3, n, p=[0.51, 0.485, 0.005])
    non_en = language > 0
    cit_p = np.where(non_en[:, None], [[0.55, 0.25, 0.20]], [[0.955, 0.03, 0.015]])
    citizenship = categorical(rng, cit_p)
    band = rng.choice(6, n, p=[0.13, 0.22, 0.19, 0.16, 0.14, 0.16])
    lo = np.array([18, 25, 35, 45, 55, 65])[band]
    hi = np.array([25, 35, 45, 55, 65, 93])[band]
    age = rng.uniform(lo, hi)
    dob = (start_day - age * 365.25).astype(np.int64)
    disability = rng.random(n) < np.clip(0.05 + 0.004 * (age - 30), 0.05, 0.35)
    young, old = age < 25, age >= 65
    emp_p = np.where(
        old[:, None],
        [[0.07, 0.02, 0.04, 0.80, 0.0, 0.07]],
        np.where(
            young[:, None],
            [[0.36, 0.20, 0.04, 0.0, 0.34, 0.06]],
            [[0.50, 0.26, 0.10, 0.02, 0.03, 0.09]],
        ),
    )
    employment = categorical(rng, emp_p)
    med = np.array([42_000, 9_000, 36_000, 24_000, 7_000, 12_000], dtype=np.float64)[employment]
    sig = np.array([0.5, 0.9, 0.8, 0.45, 0.8, 1.0])[employment]
    income = np.round(med * rng.lognormal(0.0, sig), 2)

    first_f, first_m, last_pool, offsets = name_pools()
    group = np.array([list(offsets).index(_LANG_GROUP.get(lang, "en")) for lang in LANGUAGES])[
        language
    ]
    off = np.array(list(offsets.values()), dtype=np.int64)[group]  # (n, 6)
    # first names index the female pool followed by the male pool
    female = (sex == 0) | ((sex == 2) & (rng.random(n) < 0.5))
    fi = np.where(
        female,
        off[:, 0] + _skewed(rng, off[:, 1]),
        len(first_f) + off[:, 2] + _skewed(rng, off[:, 3]),
    )
    # mixed families: a share of names come from the majority pool
    mixed = rng.random(n) < 0.12
    en = np.array(offsets["en"], dtype=np.int64)
    last = np.where(
        mixed, en[4] + _skewed(rng, np.full(n, en[5])), off[:, 4] + _skewed(rng, off[:, 5])
    )
    style_p = np.where(
        fabricated[:, None],
        [[0.10, 0.08, 0.05, 0.05, 0.17, 0.15, 0.10, 0.30]],
        [[0.26, 0.18, 0.12, 0.07, 0.14, 0.12, 0.09, 0.02]],
    )
    region = rng.choice(len(REGIONS), n, p=_normalise(REGION_P))
    chan_p = np.where(
        old[:, None],
        [[0.30, 0.22, 0.18, 0.30]],
        np.where(young[:, None], [[0.85, 0.06, 0.06, 0.03]], [[0.62, 0.14, 0.14, 0.10]]),
    )
    devices = new_devices(rng, 2 * n)
    phones = new_phones(rng, 2 * n, np.concatenate([region, rng.integers(0, len(REGIONS), n)]))
    z = np.zeros(n, dtype=np.int64)
    return People(
        fabricated=fabricated,
        language=language,
        sex=sex,
        citizenship=citizenship,
        dob=dob,
        disability=disability,
        employment=employment,
        income=income,
        first=fi,
        middle=rng.integers(0, 26, n),
        last=last,
        email_style=categorical(rng, style_p),
        email_domain=rng.choice(len(EMAIL_DOMAINS), n, p=_normalise(EMAIL_DOMAIN_P)),
        email_tag=rng.integers(0, 1000, n),
        national_id=_national_ids(rng, n),
        phone=phones[:n],
        phone2=phones[n:],
        bank=new_banks(rng, n),
        device=devices[:n],
        device2=devices[n:],
        home_ip=new_ips(rng, n, RESIDENTIAL_OCTETS),
        channel=categorical(rng, chan_p),
        level=rng.lognormal(0.0, 0.25, n),
        address=z.copy() - 1,
        household_size=z + 1,
        dependents=z.copy(),
        move_in=z.copy(),
        place=z.copy(),
        place_device=z.copy(),
        place_ip=z.copy(),
    )


def _skewed(rng: np.random.Generator, size: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per-row index in [0, size) skewed towards 0 (popular names first)."""
    u = rng.random(len(size))
    return np.minimum((size * u**1.8).astype(np.int64), size - 1)


def _national_ids(rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    """Distinct SSN-shaped numbers: area 001-899 (not 666), group 01-99, serial 0001-9999."""
    x = unique_ints(rng, n, 0, 898 * 99 * 9999)
    area = 1 + x // (99 * 9999)
    area = np.where(area >= 666, area + 1, area)
    group = 1 + (x // 9999) % 99
    serial = 1 + x % 9999
    return area * 1_000_000 + group * 10_000 + serial


def settle(
    rng: np.random.Generator,
    people: People,
    addresses: Addresses,
    n_pop: int,
    biased: NDArray[np.bool_],
    start_day: int,
) -> None:
    """Put the first ``n_pop`` people into households, care homes and shelters (in place).

    Families share an address and a home IP, sometimes a landline or (spouses) a bank account;
    care homes and shelters hold many unrelated residents at one address. People in the
    ``biased`` group more often end up in shared housing (the fairness-test option).
    """
    n = n_pop
    age_now = (start_day - people.dob[:n]) / 365.25  # years at the window start
    order = rng.permutation(n)
    # care homes: elderly residents; shelters: working-age residents
    n_care = max(2, n // 2500)
    n_shelter = max(2, n // 4000)
    old = order[age_now[order] >= 72]
    care_sizes = rng.integers(15, 80, n_care)
    care_res = old[: min(len(old), int(care_sizes.sum()), n // 60)]
    working = order[(age_now[order] < 60) & ~np.isin(order, care_res)]
    shelter_sizes = rng.integers(10, 60, n_shelter)
    shelter_res = working[: min(len(working), int(shelter_sizes.sum()), n // 80)]
    placed = np.zeros(n, dtype=bool)
    placed[care_res] = True
    placed[shelter_res] = True

    for residents, sizes, code in (
        (care_res, care_sizes, S_CARE_HOME),
        (shelter_res, shelter_sizes, S_SHELTER),
    ):
        k = len(sizes)
        home = np.repeat(np.arange(k), sizes)[: len(residents)]
        if len(home) < len(residents):
            home = np.concatenate([home, rng.integers(0, k, len(residents) - len(home))])
        ids = addresses.extend(rng, k)
        addresses.unit[ids] = 0
        people.address[residents] = ids[home]
        people.place[residents] = code
        people.household_size[residents] = 1
        people.dependents[residents] = 0
        people.place_device[residents] = new_devices(rng, k)[home]
        people.place_ip[residents] = new_ips(rng, k, RESIDENTIAL_OCTETS)[home]
        landline = new_phones(rng, k, addresses.region(ids))[home]
        people.phone[residents] = np.where(
            rng.random(len(residents)) < 0.5, landline, people.phone[residents]
        )
        stay = 30 * rng.exponential(30 if code == S_CARE_HOME else 2.5, len(residents))
        people.move_in[residents] = -stay.astype(np.int64)
    out_of_work = rng.random(len(shelter_res)) < 0.6
    people.employment[shelter_res] = np.where(
        out_of_work, UNEMPLOYED, people.employment[shelter_res]
    )

    # families: 1-3 claiming adults per household, plus children who do not claim
    rest = order[~placed[order]]
    adults = rng.choice([1, 2, 3], len(rest), p=[0.55, 0.40, 0.05])
    hh_of = np.repeat(np.arange(len(rest)), adults)[: len(rest)]
    n_hh = int(hh_of[-1]) + 1 if len(rest) else 0
    members = np.bincount(hh_of, minlength=n_hh)
    kids = np.where(rng.random(n_hh) < 0.45, 0, 1 + rng.poisson(0.9, n_hh))
    kids = np.where(
        rng.random(n_hh) < 0.01, kids + rng.integers(4, 12, n_hh), kids
    )  # large families
    hh_addr = addresses.extend(rng, n_hh)
    # apartment buildings: some households live in the same building, different unit
    bld = rng.random(n_hh) < 0.15
    src = rng.integers(0, n_hh, n_hh)
    for col in ("number", "street", "kind", "city"):
        arr = getattr(addresses, col)
        arr[hh_addr[bld]] = arr[hh_addr[src[bld]]]
    # each household moved into a building gets a unit of its own: 60, 61, ... in the order of
    # the building's movers (the units 1-59 of the buildings' first addresses never collide).
    # The draws that once chose the unit (at random, so two households could share one, and then
    # looked like one address of five or six people) are still made, so that every later draw
    # of the generator, and so every other value of its claims, stays as it was.
    rng.integers(0, 60, int(bld.sum()))
    rng.integers(0, 4, int(bld.sum()))
    movers = np.flatnonzero(bld)
    at = hh_addr[movers]  # their building: the address (just copied) without its unit
    building = addresses._keys(
        addresses.number[at],
        addresses.street[at],
        addresses.kind[at],
        np.zeros_like(at),
        addresses.city[at],
    )
    order = np.argsort(building, kind="stable")
    by_building = building[order]
    first = np.r_[0, np.flatnonzero(np.diff(by_building)) + 1]
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    units = np.empty(len(movers), dtype=addresses.unit.dtype)
    units[order] = 60 + rank
    addresses.unit[hh_addr[movers]] = units
    first_of = np.r_[
        0, np.flatnonzero(np.diff(hh_of)) + 1
    ]  # position of each household's first adult
    head = rest[first_of]
    people.address[rest] = hh_addr[hh_of]
    people.household_size[rest] = np.minimum(members + kids, 30)[hh_of]
    people.dependents[rest] = np.minimum(kids, 25)[hh_of]
    people.place[rest] = np.where(members[hh_of] > 1, S_HOUSEHOLD, S_NONE)
    people.home_ip[rest] = people.home_ip[head][hh_of]
    people.language[rest] = np.where(
        rng.random(len(rest)) < 0.85, people.language[head][hh_of], people.language[rest]
    )
    people.last[rest] = np.where(
        rng.random(len(rest)) < 0.6, people.last[head][hh_of], people.last[rest]
    )
    has_landline = rng.random(n_hh) < np.where(members > 1, 0.25, 0.08)
    people.phone[rest] = np.where(
        has_landline[hh_of], people.phone[head][hh_of], people.phone[rest]
    )
    spouse_bank = (rng.random(n_hh) < 0.35)[hh_of] & (members[hh_of] > 1)
    people.bank[rest] = np.where(spouse_bank, people.bank[head][hh_of], people.bank[rest])
    people.move_in[rest] = -(365.25 * rng.exponential(6.0, n_hh)).astype(np.int64)[hh_of]

    # the bias option: innocent members of the group more often live in shared housing
    lone = rest[(members[hh_of] == 1) & biased[rest]]
    movers = lone[rng.random(len(lone)) < 0.35]
    if len(movers):
        n_shared = max(1, len(movers) // 4)
        ids = addresses.extend(rng, n_shared)
        people.address[movers] = ids[rng.integers(0, n_shared, len(movers))]
        people.place[movers] = S_HOUSEHOLD
        people.move_in[movers] = -(30 * rng.exponential(8.0, len(movers))).astype(np.int64)


def settle_fabricated(
    rng: np.random.Generator, people: People, addresses: Addresses, who: NDArray[np.int64]
) -> None:
    """Give fabricated people a fresh address, a declared household and a recent move-in."""
    people.address[who] = addresses.extend(rng, len(who))
    kids = np.where(rng.random(len(who)) < 0.5, 0, 1 + rng.poisson(1.0, len(who)))
    people.dependents[who] = kids
    people.household_size[who] = 1 + (rng.random(len(who)) < 0.4) + kids
    people.move_in[who] = -(30 * rng.exponential(9.0, len(who))).astype(np.int64)


# --- amounts and times ------------------------------------------------------------------------


def amounts(
    rng: np.random.Generator,
    program: NDArray[np.int64],
    household_size: NDArray[np.int64],
    dependents: NDArray[np.int64],
    income: NDArray[np.float64],
    level: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Heavy-tailed claim amounts by program, raised by household size (housing, child benefit)."""
    n = len(program)
    hh = np.minimum(household_size, 9) - 1
    base = np.select(
        [program == UNEMPLOYMENT, program == HOUSING, program == CHILD, program == TAX],
        [
            850.0 * (1 + 0.04 * hh) * rng.lognormal(0, 0.06, n),
            650.0 * (1 + 0.18 * hh) * rng.lognormal(0, 0.04, n),
            210.0 * np.maximum(dependents, 1) ** 0.9 * rng.lognormal(0, 0.03, n),
            (300.0 + 0.035 * income) * rng.lognormal(0, 0.6, n),
        ],
        np.minimum(3000.0 * (1 + rng.pareto(2.0, n)), 150_000.0),
    )
    return np.round(base * level, 2)


_HOURS_ONLINE = _normalise(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5, 5, 5, 4.5, 4.5, 4.5, 5, 5.5, 6, 6, 5, 3.5, 2]
)
_HOURS_OFFICE = _normalise([0] * 8 + [3, 5, 6, 5, 3, 4, 5, 4, 3] + [0] * 7)
_MONTH_WEIGHT = np.array([1.4, 1.3, 1.0, 0.9, 0.9, 1.0, 1.1, 1.0, 0.9, 0.9, 1.0, 1.2])


def seconds_of_day(rng: np.random.Generator, channel: NDArray[np.int64]) -> NDArray[np.int64]:
    """Submission time of day: online claims around the clock, the others in office hours."""
    n = len(channel)
    hour = np.where(
        channel == ONLINE, rng.choice(24, n, p=_HOURS_ONLINE), rng.choice(24, n, p=_HOURS_OFFICE)
    )
    return hour * 3600 + rng.integers(0, 3600, n)


def workday(
    rng: np.random.Generator,
    day: NDArray[np.int64],
    channel: NDArray[np.int64],
    start_day: int,
    days: int,
) -> NDArray[np.int64]:
    """Move weekend submissions to the next Monday (always offline, often online)."""
    weekday = (day + start_day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    move = (weekday >= 5) & ((channel != ONLINE) | (rng.random(len(day)) < 0.4))
    out = np.where(move, day + 7 - weekday, day)
    return np.where(out >= days, out - 7, out)


def seasonal_days(
    rng: np.random.Generator, low: NDArray[np.int64], high: NDArray[np.int64], start_day: int
) -> NDArray[np.int64]:
    """Days uniform in [low, high), thinned by a monthly pattern (busier in winter)."""
    span = np.maximum(high - low, 1)
    day = low + (rng.random(len(low)) * span).astype(np.int64)
    for _ in range(2):
        month = (
            np.asarray(day + start_day, dtype="datetime64[D]")
            .astype("datetime64[M]")
            .astype(np.int64)
        ) % 12
        reject = rng.random(len(day)) > _MONTH_WEIGHT[month] / _MONTH_WEIGHT.max()
        day = np.where(reject, low + (rng.random(len(low)) * span).astype(np.int64), day)
    return day


@dataclass
class Rows:
    """Claims under construction: one entry per claim, identity as codes (rendered later)."""

    who: NDArray[np.int64]  # the person whose identity (name, dob, national id) is used
    phone: NDArray[np.int64]  # 0: none
    email: NDArray[np.int64]  # person whose e-mail is used; -1: none
    address: NDArray[np.int64]
    bank: NDArray[np.int64]
    device: NDArray[np.int64]  # 0: none
    ip: NDArray[np.int64]  # 0: none
    t: NDArray[np.int64]  # seconds since the window start
    program: NDArray[np.int64]
    amount: NDArray[np.float64]
    channel: NDArray[np.int64]
    household_size: NDArray[np.int64]
    dependents: NDArray[np.int64]
    income: NDArray[np.float64]
    months: NDArray[np.int64]
    employment: NDArray[np.int64]
    typology: NDArray[np.int64]
    ring: NDArray[np.int64]  # -1: none
    sharing: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.who)

    def take(self, idx: NDArray[np.int64]) -> Rows:
        return Rows(**{k: v[idx] for k, v in vars(self).items()})

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(**{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])})


def rows_for(
    rng: np.random.Generator,
    people: People,
    who: NDArray[np.int64],
    t: NDArray[np.int64],
    program: NDArray[np.int64],
    channel: NDArray[np.int64],
) -> Rows:
    """Claims filed honestly by ``who`` at ``t``: each person's own identity and contacts."""
    n = len(who)
    online = channel == ONLINE
    day = t // SECONDS_PER_DAY
    place = people.place[who]
    at_place = ((place == S_CARE_HOME) | (place == S_SHELTER)) & online & (rng.random(n) < 0.7)
    device = np.where(rng.random(n) < 0.85, people.device[who], people.device2[who])
    device = np.where(at_place, people.place_device[who], device)
    u = rng.random(n)
    ip = np.where(u < 0.72, people.home_ip[who], new_ips(rng, n, MOBILE_OCTETS))
    ip = np.where(at_place, people.place_ip[who], ip)
    months = np.maximum((day - people.move_in[who]) / 30.44, 0).astype(np.int64)
    return Rows(
        who=who,
        phone=people.phone[who].copy(),
        email=who.copy(),
        address=people.address[who].copy(),
        bank=people.bank[who].copy(),
        device=np.where(online, device, 0),
        ip=np.where(online, ip, 0),
        t=t,
        program=program,
        amount=amounts(
            rng,
            program,
            people.household_size[who],
            people.dependents[who],
            people.income[who],
            people.level[who],
        ),
        channel=channel,
        household_size=people.household_size[who].copy(),
        dependents=people.dependents[who].copy(),
        income=np.round(
            people.income[who] * np.where(rng.random(n) < 0.2, rng.lognormal(0, 0.05, n), 1.0), 2
        ),
        months=np.minimum(months, 1200),
        employment=people.employment[who].copy(),
        typology=np.zeros(n, dtype=np.int64),
        ring=np.full(n, -1, dtype=np.int64),
        sharing=place.copy(),
    )


# programs each employment status tends to claim (rows: EMPLOYMENT; columns: PROGRAMS)
_PROGRAM_P = np.array(
    [
        [0.05, 0.15, 0.25, 0.50, 0.05],
        [0.70, 0.20, 0.08, 0.02, 0.00],
        [0.05, 0.10, 0.10, 0.35, 0.40],
        [0.00, 0.65, 0.00, 0.35, 0.00],
        [0.10, 0.60, 0.00, 0.30, 0.00],
        [0.30, 0.45, 0.15, 0.05, 0.05],
    ]
)
_CLAIM_RATE = np.array([8.0, 9.0, 9.0, 1.4, 1.3])  # relative claims per person by primary program
_PERIOD = np.array([14.0, 30.4, 30.4, 365.25, 120.0])  # days between repeat claims


def histories(
    rng: np.random.Generator,
    people: People,
    n_pop: int,
    n_claims: int,
    start_day: int,
    days: int,
    biased: NDArray[np.bool_],
) -> Rows:
    """``n_claims`` legitimate claims by the first ``n_pop`` people, as repeated claim histories.

    Every person claims at least once; the rest follow a heavy-tailed activity level that depends
    on the program (unemployment every two weeks during a spell, housing and child benefit
    monthly, tax refunds yearly in spring, grants rarely).
    """
    n = n_pop
    emp = people.employment[:n]
    has_kids = people.dependents[:n] > 0
    p = _PROGRAM_P[emp] * np.where(has_kids[:, None], [[1, 1, 4, 1, 1]], [[1, 1, 0, 1, 1]])
    p = p + 1e-9
    primary = categorical(rng, p)
    p2 = p.copy()
    p2[np.arange(n), primary] = 0
    secondary = categorical(rng, p2 + 1e-9 * (p2.sum(axis=1, keepdims=True) == 0))
    weight = _CLAIM_RATE[primary] * rng.gamma(1.2, 1.0, n)
    counts = 1 + rng.multinomial(n_claims - n, weight / weight.sum())
    who = np.repeat(np.arange(n, dtype=np.int64), counts)
    m = len(who)
    program = np.where(rng.random(m) < 0.8, primary[who], secondary[who])
    jan1 = _calendar_years(start_day, days)
    rank = _rank_within(who, program)
    over = (program == TAX) & (rank >= len(jan1))
    program = np.where(over, np.where(primary[who] == TAX, secondary[who], primary[who]), program)
    order, rank, group = _groups(who, program)
    who, program = who[order], program[order]
    k = np.bincount(group)  # claims per (person, program) stream
    g_prog = program[np.r_[0, np.flatnonzero(np.diff(group)) + 1]]
    period = _PERIOD[g_prog] * rng.uniform(0.9, 1.1, len(k))
    period = np.where(g_prog == TAX, 365.25, period)
    span = (k - 1) * period
    period = np.where(span >= days, days / np.maximum(k, 1), period)
    span = np.minimum(span, days - 1)
    start = seasonal_days(
        rng, np.zeros(len(k), dtype=np.int64), (days - span).astype(np.int64), start_day
    )
    day_f = (
        start[group]
        + (rank * period[group]).astype(np.int64)
        + rng.normal(0, 0.08, m) * period[group]
    )
    # tax refunds: one per calendar year, peaking in spring (day of year ~ N(90, 28))
    y0 = (rng.random(len(k)) * np.maximum(len(jan1) - k + 1, 1)).astype(np.int64)
    yr = np.minimum(y0[group] + rank, len(jan1) - 1)
    tax_day = jan1[yr] + np.clip(rng.normal(90, 28, m), 10, 250)
    day = np.clip(np.where(program == TAX, tax_day, day_f).astype(np.int64), 0, days - 1)
    channel = np.where(rng.random(m) < 0.85, people.channel[who], rng.integers(0, 4, m))
    day = workday(rng, day, channel, start_day, days)
    t = day * SECONDS_PER_DAY + seconds_of_day(rng, channel)
    rows = rows_for(rng, people, who, t, program, channel)
    _public_ips(rng, rows, n_pop, days)
    _phone_changes(rng, people, rows, days)
    g = biased[rows.who]
    rows.amount = np.where(g, np.round(rows.amount * 1.25, 2), rows.amount)
    rows.months = np.where(g, (rows.months * 0.35).astype(np.int64), rows.months)
    return rows


def _calendar_years(start_day: int, days: int) -> NDArray[np.int64]:
    """Day offsets (from the window start) of 1 January of each year the window touches."""
    first = np.datetime64(start_day, "D").astype("datetime64[Y]")
    last = np.datetime64(start_day + days - 1, "D").astype("datetime64[Y]")
    years = np.arange(first, last + 1)
    return (years.astype("datetime64[D]").astype(np.int64) - start_day).astype(np.int64)


def _rank_within(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Rank of each row within its (a, b) group, in row order (rows are grouped by ``a``)."""
    order, rank, _ = _groups(a, b)
    out = np.empty_like(rank)
    out[order] = rank
    return out


def _groups(
    a: NDArray[np.int64], b: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Stable order by (a, b), each row's rank in its group, and its group number (in that order)."""
    order = np.lexsort((b, a))
    sa, sb = a[order], b[order]
    new = np.r_[True, (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1])]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    rank = np.arange(len(a)) - starts[group]
    return order, rank, group


def _public_ips(rng: np.random.Generator, rows: Rows, n_pop: int, days: int) -> None:
    """Some online claims come from a library: one public IP (and kiosk) for many people.

    Libraries hold help sessions, so their claims bunch into a few busy days.
    """
    n_lib = max(3, n_pop // 12_500)
    lib_ip = new_ips(rng, n_lib, RESIDENTIAL_OCTETS)
    lib_dev = new_devices(rng, n_lib)
    at_home = (rows.sharing != S_CARE_HOME) & (rows.sharing != S_SHELTER)
    idx = np.flatnonzero((rows.channel == ONLINE) & at_home & (rng.random(len(rows)) < 0.04))
    lib = rng.integers(0, n_lib, len(idx))
    help_days = rng.integers(0, days, (n_lib, 24))
    session = rng.random(len(idx)) < 0.4
    day = np.where(
        session, help_days[lib, rng.integers(0, 24, len(idx))], rows.t[idx] // SECONDS_PER_DAY
    )
    rows.t[idx] = day * SECONDS_PER_DAY + rng.integers(10 * 3600, 17 * 3600, len(idx))
    rows.ip[idx] = lib_ip[lib]
    rows.device[idx] = np.where(rng.random(len(idx)) < 0.5, lib_dev[lib], rows.device[idx])
    rows.sharing[idx] = S_PUBLIC_IP


def _phone_changes(rng: np.random.Generator, people: People, rows: Rows, days: int) -> None:
    """About one person in ten changes phone number; later claims carry the new number."""
    n = len(people)
    changes = rng.random(n) < 0.1
    when = rng.integers(30, max(days, 31), n)
    after = changes[rows.who] & (rows.t // SECONDS_PER_DAY >= when[rows.who])
    rows.phone = np.where(after, people.phone2[rows.who], rows.phone)
    rows.sharing = np.where(after & (rows.sharing != S_PUBLIC_IP), S_PHONE_CHANGE, rows.sharing)
