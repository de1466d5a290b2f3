"""Normalisation of raw identity values by kind, before they are hashed."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import phonenumbers

#: The identity kinds a record spec may declare.
KINDS: tuple[str, ...] = (
    "national_id",
    "name",
    "dob",
    "phone",
    "email",
    "address",
    "bank_account",
    "device_id",
    "ip",
)

_NON_DIGIT = re.compile(r"\D+")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_SPACES = re.compile(r"\s+")
_NAME_JUNK = re.compile(r"[^a-z\s]+")
_NANP = re.compile(
    r"^\s*(?:\+?1[\s.\-]*)?\(?([2-9]\d{2})\)?[\s.\-]*([2-9]\d{2})[\s.\-]*(\d{4})\s*$"
)
_DATE_PARTS = re.compile(r"^\s*(\d{1,4})[\-/. ](\d{1,2})[\-/. ](\d{1,4})\s*$")
_DATE_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$")

_NAME_DROP = frozenset({"mr", "mrs", "ms", "miss", "dr", "jr", "sr", "ii", "iii", "iv", "mx"})

#: Providers that ignore dots in the local part.
DOT_BLIND_PROVIDERS = frozenset({"gmail.com"})
#: Providers that deliver ``local+tag@domain`` to ``local@domain``.
PLUS_TAG_PROVIDERS = frozenset(
    {
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "protonmail.com",
        "proton.me",
        "fastmail.com",
    }
)
_EMAIL_ALIASES = {"googlemail.com": "gmail.com"}

#: Address words and their standard abbreviations (USPS style).
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "highway": "hwy",
    "parkway": "pkwy",
    "circle": "cir",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "mount": "mt",
    "saint": "st",
    "fort": "ft",
}
#: Words that introduce a unit number; all become ``unit``.
UNIT_WORDS = frozenset({"apt", "apartment", "unit", "suite", "ste", "flat", "room", "rm", "no"})


@dataclass(frozen=True, slots=True)
class NormaliseOptions:
    """How ambiguous values are read.

    Parameters
    ----------
    phone_region : str
        ISO region for phone numbers written without a country code.
    dob_order : str
        Order of day, month and year in dates like ``03/04/1980``: ``"MDY"`` or ``"DMY"``.
    national_id_format : str
        ``"us_ssn"`` (area, group and serial rules), ``"luhn"`` (a check digit, e.g. a Canadian
        SIN) or ``"generic"`` (letters and digits only, no check).
    """

    phone_region: str = "US"
    dob_order: str = "MDY"
    national_id_format: str = "us_ssn"

    def __post_init__(self) -> None:
        if self.dob_order not in ("MDY", "DMY"):
            raise ValueError(f"dob_order must be 'MDY' or 'DMY', got {self.dob_order!r}")
        if self.national_id_format not in ("us_ssn", "luhn", "generic"):
            raise ValueError(
                "national_id_format must be 'us_ssn', 'luhn' or 'generic', "
                f"got {self.national_id_format!r}"
            )


def fold(text: str) -> str:
    """Lower-case ASCII text with accents removed (``"Zoë"`` -> ``"zoe"``)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_tokens(value: str) -> list[str]:
    """The sorted tokens of a person's name, titles, suffixes and initials left out.

    ``"Smith, Zoë A."`` and ``"zoe smith"`` give the same tokens.

    >>> name_tokens("Smith, Zoë A.")
    ['smith', 'zoe']
    """
    text = _NAME_JUNK.sub(" ", fold(value).replace("'", "").replace("-", " "))
    tokens = [t for t in text.split() if len(t) > 1 and t not in _NAME_DROP]
    return sorted(tokens)


def normalise_name(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A name as its sorted, folded tokens joined by one space (order does not matter)."""
    tokens = name_tokens(value)
    return " ".join(tokens) if tokens else None


def normalise_dob(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A date of birth as ``YYYY-MM-DD``, or None when it is not a plausible date."""
    opts = options or NormaliseOptions()
    m = _DATE_COMPACT.match(value)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = _DATE_PARTS.match(value.split("T")[0])
        if not m:
            return None
        a, b, c = m.group(1), m.group(2), m.group(3)
        if len(a) == 4:
            y, mo, d = int(a), int(b), int(c)
        elif len(c) == 4:
            y = int(c)
            mo, d = (int(a), int(b)) if opts.dob_order == "MDY" else (int(b), int(a))
        else:
            return None
    try:
        born = date(y, mo, d)
    except ValueError:
        return None
    if born.year < 1900 or born > date.today():
        return None
    return born.isoformat()


def normalise_phone(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A phone number in E.164 (``+14155550132``), or None when it cannot be a number.

    North American numbers take a fast path that gives the same answer as ``phonenumbers``
    (checked by a test); everything else goes through ``phonenumbers``.
    """
    opts = options or NormaliseOptions()
    if opts.phone_region in ("US", "CA"):
        m = _NANP.match(value)
        if m:
            return "+1" + m.group(1) + m.group(2) + m.group(3)
    try:
        parsed = phonenumbers.parse(value, opts.phone_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str, options: NormaliseOptions | None = None) -> str | None:
    """An e-mail address in lower case, with dots and plus-tags removed where the provider ignores them."""
    text = value.strip().casefold()
    local, sep, domain = text.rpartition("@")
    if not sep or not local or "." not in domain:
        return None
    domain = _EMAIL_ALIASES.get(domain, domain)
    if domain in PLUS_TAG_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in DOT_BLIND_PROVIDERS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def normalise_address(value: str, options: NormaliseOptions | None = None) -> str | None:
    """An address folded to lower case, punctuation dropped, words abbreviated, units as ``unit X``.

    >>> normalise_address("12 North Main Street, Apt. #4B")
    '12 n main st unit 4b'
    """
    text = fold(value).replace("#", " unit ")
    words = _NON_ALNUM.sub(" ", text).split()
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in UNIT_WORDS and i + 1 < len(words):
            if out[-2:-1] != ["unit"]:
                out.append("unit")
            i += 1
            while i < len(words) and words[i] in UNIT_WORDS:
                i += 1
            if i < len(words):
                out.append(words[i])
            i += 1
            continue
        out.append(ADDRESS_ABBREVIATIONS.get(w, w))
        i += 1
    return " ".join(out) if out else None


def normalise_national_id(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A national id as upper-case letters and digits (separators dropped)."""
    text = _NON_ALNUM.sub("", value).upper()
    return text or None


def national_id_valid(normalised: str, options: NormaliseOptions | None = None) -> bool:
    """Whether a normalised national id passes its format's rules (and check digit, if any)."""
    opts = options or NormaliseOptions()
    if opts.national_id_format == "us_ssn":
        if len(normalised) != 9 or not normalised.isdigit():
            return False
        area, group, serial = normalised[:3], normalised[3:5], normalised[5:]
        return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
    if opts.national_id_format == "luhn":
        return normalised.isdigit() and len(normalised) >= 2 and _luhn_ok(normalised)
    return True


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def normalise_bank_account(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A bank account (or IBAN) as upper-case letters and digits, separators dropped."""
    text = _NON_ALNUM.sub("", value).upper()
    return text or None


def normalise_device_id(value: str, options: NormaliseOptions | None = None) -> str | None:
    """A device id trimmed and lower-cased (UUID hyphens and braces dropped)."""
    text = value.strip().casefold().strip("{}")
    if len(text) == 36 and text.count("-") == 4:
        text = text.replace("-", "")
    return text or None


def normalise_ip(value: str, options: NormaliseOptions | None = None) -> str | None:
    """An IP address in its compressed form (IPv4-mapped IPv6 becomes IPv4), or None."""
    text = value.strip()
    if _IPV4.match(text):  # dotted decimal without leading zeros is already canonical
        return text
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def ip_block(normalised_ip: str) -> str:
    """The network block of a normalised IP: its /24 for IPv4, its /48 for IPv6."""
    if ":" not in normalised_ip:
        return normalised_ip.rsplit(".", 1)[0] + ".0/24"
    prefix = 48
    return str(ipaddress.ip_network(f"{normalised_ip}/{prefix}", strict=False))


NORMALISERS: dict[str, Callable[[str, NormaliseOptions | None], str | None]] = {
    "national_id": normalise_national_id,
    "name": normalise_name,
    "dob": normalise_dob,
    "phone": normalise_phone,
    "email": normalise_email,
    "address": normalise_address,
    "bank_account": normalise_bank_account,
    "device_id": normalise_device_id,
    "ip": normalise_ip,
}


def normalise(kind: str, value: object, options: NormaliseOptions | None = None) -> str | None:
    """Normalise one raw identity value of ``kind``; None when missing or unusable.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    value : object
        The raw value (a string; None, NA and blank count as missing).
    options : NormaliseOptions, optional
        Regional reading rules.

    Returns
    -------
    str or None
        The normalised value. The raw value never appears in an error.

    Examples
    --------
    >>> normalise("email", "John.Smith+claims@GoogleMail.com")
    'johnsmith@gmail.com'
    """
    return _normalised(_normaliser(kind), value, options)


def _normalised(
    fn: Callable[[str, NormaliseOptions | None], str | None],
    value: object,
    options: NormaliseOptions | None,
) -> str | None:
    """``fn`` of ``value`` when it is a string that is not blank (isspace() is False for "",
    hence the length test); None otherwise."""
    return fn(value, options) if isinstance(value, str) and value and not value.isspace() else None


def _normaliser(kind: str) -> Callable[[str, NormaliseOptions | None], str | None]:
    """The normaliser of ``kind``; a clear error for a kind that has none."""
    try:
        return NORMALISERS[kind]
    except KeyError:
        raise ValueError(f"identity kind must be one of {', '.join(KINDS)}, got {kind!r}") from None


def normalise_many(
    kind: str, values: Iterable[object], options: NormaliseOptions | None = None
) -> list[str | None]:
    """Normalise many values of one kind, each distinct value once (the same as
    :func:`normalise` on each)."""
    fn = _normaliser(kind)
    cache: dict[object, str | None] = {}
    out: list[str | None] = []
    for v in values:
        try:
            out.append(cache[v])
        except KeyError:
            n = _normalised(fn, v, options)
            cache[v] = n
            out.append(n)
        except TypeError:  # unhashable: never an identity value
            out.append(None)
    return out
