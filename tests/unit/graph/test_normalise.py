"""Normalisation of identity values by kind."""

import phonenumbers
import pytest

from graph.normalise import (
    KINDS,
    NormaliseOptions,
    ip_block,
    national_id_valid,
    normalise,
    normalise_many,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(415) 555-0132", "+14155550132"),
        ("+1 415.555.0132", "+14155550132"),
        ("1-415-555-0132", "+14155550132"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12", None),
    ],
)
def test_phone_e164(raw, expected):
    assert normalise("phone", raw) == expected


@pytest.mark.parametrize(
    "raw", ["(212) 456-7890", "+1 (305) 555 1234", "646.555.0199", "1 800 234 5678", "2025550143"]
)
def test_phone_fast_path_agrees_with_phonenumbers(raw):
    parsed = phonenumbers.parse(raw, "US")
    assert normalise("phone", raw) == phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    )


def test_phone_region_is_used():
    assert (
        normalise("phone", "020 7946 0958", NormaliseOptions(phone_region="GB")) == "+442079460958"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Smith+claims@GoogleMail.com", "johnsmith@gmail.com"),
        ("j.smith+x@outlook.com", "j.smith@outlook.com"),
        ("J.Smith+x@example.org", "j.smith+x@example.org"),  # provider unknown: keep the tag
        ("not-an-email", None),
    ],
)
def test_email(raw, expected):
    assert normalise("email", raw) == expected


def test_address_abbreviations_case_punctuation_and_units():
    a = normalise("address", "12 North Main Street, Apt. #4B")
    b = normalise("address", "12 n. MAIN st unit 4b")
    c = normalise("address", "12 North Main St, Suite 4B")
    assert a == b == c == "12 n main st unit 4b"
    assert normalise("address", "12 North Main Street, Apt 5") != a


def test_name_unicode_folding_and_order():
    assert normalise("name", "Zoë Smith") == normalise("name", "SMITH, Zoe") == "smith zoe"
    assert normalise("name", "Dr. José A. Núñez-García") == "garcia jose nunez"
    assert normalise("name", "  ") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1980-03-04", "1980-03-04"),
        ("03/04/1980", "1980-03-04"),
        ("19800304", "1980-03-04"),
        ("1980/3/4", "1980-03-04"),
        ("1980-02-30", None),
        ("1850-01-01", None),
        ("yesterday", None),
    ],
)
def test_dob(raw, expected):
    assert normalise("dob", raw) == expected


def test_dob_day_first():
    assert normalise("dob", "03/04/1980", NormaliseOptions(dob_order="DMY")) == "1980-04-03"


def test_national_id_format_and_checks():
    assert normalise("national_id", "123-45-6789") == "123456789"
    assert national_id_valid("123456789")
    for bad in ("000123456", "666123456", "912345678", "123006789", "123450000", "12345"):
        assert not national_id_valid(bad), bad
    luhn = NormaliseOptions(national_id_format="luhn")
    assert national_id_valid("046454286", luhn)  # a valid Canadian SIN
    assert not national_id_valid("046454287", luhn)


def test_ip_and_block():
    assert normalise("ip", " 203.0.113.7 ") == "203.0.113.7"
    assert normalise("ip", "::ffff:203.0.113.7") == "203.0.113.7"
    assert normalise("ip", "2001:DB8:0:0::1") == "2001:db8::1"
    assert normalise("ip", "203.0.113.07") is None
    assert normalise("ip", "999.1.1.1") is None
    assert ip_block("203.0.113.7") == "203.0.113.0/24"
    assert ip_block("2001:db8::1") == "2001:db8::/48"


def test_bank_and_device():
    assert normalise("bank_account", "gb29 nwbk-6016 1331 9268 19") == "GB29NWBK60161331926819"
    assert normalise("device_id", "{6F9619FF-8B86-D011-B42D-00C04FC964FF}") == (
        "6f9619ff8b86d011b42d00c04fc964ff"
    )


def test_missing_values_and_unknown_kind():
    assert normalise("phone", None) is None
    assert normalise("phone", float("nan")) is None
    with pytest.raises(ValueError, match="identity kind must be one of .* got 'shoe_size'"):
        normalise("shoe_size", "42")


def test_normalise_many_matches_scalar():
    values = ["(415) 555-0132", None, "(415) 555-0132", "bad"]
    assert normalise_many("phone", values) == [normalise("phone", v) for v in values]


@pytest.mark.parametrize("kind", KINDS)
def test_normalise_many_matches_scalar_on_blank_and_odd_values(kind):
    """Each kind, with the values the batch path must treat as ``normalise`` does: blanks of
    every sort, numbers, NaN, an unhashable value."""
    values = ["", " ", "\t\u00a0\u2003", " x ", "  JOHN  SMITH ", "12", 12, 3.5, float("nan"), None,
              "1990-02-03", "john.smith+x@googlemail.com", "10.1.2.3", "Flat 2, 1 High St.", []]
    assert normalise_many(kind, values) == [
        None if isinstance(v, list) else normalise(kind, v) for v in values
    ]
    with pytest.raises(ValueError, match="identity kind must be one of .* got 'shoe_size'"):
        normalise_many("shoe_size", values)
