"""Contact details: French phone numbers to E.164, postal addresses letters can be sent to."""

import pytest

from identity.domain.profile import InvalidPhone, PostalAddress, clean_address, normalise_phone


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("+330612345678", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("01 23 45 67 89", "+33123456789"),
        ("09 70 12 34 56", "+33970123456"),
        ("０６ １２ ３４ ５６ ７８", "+33612345678"),  # full-width digits, as some phones type them
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe mobile
        ("0262 12 34 56", "+262262123456"),  # La Réunion
        ("0696 12 34 56", "+596696123456"),  # Martinique mobile
        ("+32 470 12 34 56", "+32470123456"),  # abroad, written with its country code
    ],
)
def test_french_phone_numbers_are_normalised_to_e164(typed, e164):
    assert normalise_phone(typed) == e164


@pytest.mark.parametrize(
    "typed", ["", "06 12 34 56", "612345678", "06 12 34 56 78 90", "0012", "+33 0 12 34 56 78",
              "06 12 AB 56 78", "+1234", "+0 612345678", "tél : 06 12 34 56 78"],
)
def test_anything_else_is_not_a_phone_number(typed):
    with pytest.raises(InvalidPhone):
        normalise_phone(typed)


def _address(**changes):
    values = dict(line1="12 rue des Lilas", line2=None, postal_code="69003", city="Lyon", country="FR")
    return clean_address(**{**values, **changes})


def test_a_french_address_is_cleaned_and_kept():
    address, errors = _address(line1="  12  rue   des Lilas ", line2="  ", city=" Lyon ", country=None)
    assert errors == []
    assert address == PostalAddress("12 rue des Lilas", None, "69003", "Lyon", "FR")


def test_the_country_defaults_to_france_and_is_upper_cased():
    assert _address(country="fr")[0].country == "FR"
    assert _address(country=None)[0].country == "FR"


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"postal_code": "6900"}, "postal_address.postal_code", "invalid_postal_code"),
        ({"postal_code": "690033"}, "postal_address.postal_code", "invalid_postal_code"),
        ({"postal_code": "2A004"}, "postal_address.postal_code", "invalid_postal_code"),
        ({"postal_code": "00100"}, "postal_address.postal_code", "invalid_postal_code"),
        ({"postal_code": " "}, "postal_address.postal_code", "required"),
        ({"line1": ""}, "postal_address.line1", "required"),
        ({"line1": "x" * 39}, "postal_address.line1", "too_long"),
        ({"line2": "y" * 39}, "postal_address.line2", "too_long"),
        ({"city": "z" * 33}, "postal_address.city", "too_long"),
        ({"city": "Lyon\x00"}, "postal_address.city", "invalid_characters"),
        ({"country": "France"}, "postal_address.country", "invalid_country"),
        ({"country": "F1"}, "postal_address.country", "invalid_country"),
    ],
)
def test_each_broken_address_rule_names_its_field(changes, field, code):
    address, errors = _address(**changes)
    assert address is None
    assert (field, code) in {(e.field, e.code) for e in errors}
    assert all(e.message for e in errors)


def test_overseas_and_foreign_postal_codes():
    assert _address(postal_code="97110", city="Pointe-à-Pitre", country="GP")[1] == []
    assert _address(postal_code="1000", city="Bruxelles", country="BE")[1] == []
    assert _address(postal_code="sw1a 1aa", city="London", country="GB")[0].postal_code == "SW1A 1AA"
    assert _address(postal_code="1000", country="MC")[1][0].code == "invalid_postal_code"


def test_every_error_is_reported_at_once():
    _, errors = _address(line1="", postal_code="abc", city="")
    assert {e.field for e in errors} == {"postal_address.line1", "postal_address.city", "postal_address.postal_code"}
