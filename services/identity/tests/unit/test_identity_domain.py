from datetime import date, timedelta

import pytest

from identity.domain.names import name_key
from identity.domain.passwords import password_violations
from identity.domain.registration import RegistrationForm, RegistryEntry, form_errors, matches_registry
from identity.domain.tokens import new_link_token, token_hash


@pytest.mark.parametrize(
    ("typed", "registry"),
    [("ndiaye", "N'Diaye"), ("LEFEVRE DUPONT", "Lefèvre-Dupont"), ("  zoé ", "Zoe"), ("Le Gall", "LEGALL"), ("ǅ", "dž")],
)
def test_names_match_whatever_the_case_accents_spaces_hyphens_and_apostrophes(typed, registry):
    assert name_key(typed) == name_key(registry)


def test_different_names_do_not_match():
    assert name_key("Martin") != name_key("Martine")


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("Espace-2026!ok", set()),
        ("Ab1!", {"password_too_short"}),
        ("abcdefg1!", {"password_no_uppercase"}),
        ("ABCDEFG1!", {"password_no_lowercase"}),
        ("Abcdefgh!", {"password_no_digit"}),
        ("Abcdefgh1", {"password_no_special"}),
        ("A" * 60 + "a" * 60 + "1!" * 5, {"password_too_long"}),
        ("", {"password_too_short", "password_no_lowercase", "password_no_uppercase", "password_no_digit", "password_no_special"}),
    ],
)
def test_each_broken_password_rule_is_named(password, codes):
    assert {v.code for v in password_violations(password)} == codes


def _form(**changes) -> RegistrationForm:
    values = dict(
        membership_number="100000001", last_name="Martin", first_name="Camille", birth_date=date(1985, 4, 12),
        email="c@example.org", email_confirmation="C@example.org", password="Espace-2026!ok",
        password_confirmation="Espace-2026!ok", terms_accepted=True,
    )
    return RegistrationForm(**{**values, **changes})


def test_a_valid_form_has_no_errors_and_emails_compare_without_case():
    assert form_errors(_form()) == []


def test_every_broken_rule_is_reported_at_once():
    errors = form_errors(
        _form(email_confirmation="x@example.org", password="short", password_confirmation="other",
              terms_accepted=False, birth_date=date.today() + timedelta(days=1))
    )
    assert {(e.field, e.code) for e in errors} >= {
        ("email_confirmation", "email_mismatch"),
        ("password", "password_too_short"),
        ("password_confirmation", "password_mismatch"),
        ("terms_accepted", "terms_not_accepted"),
        ("birth_date", "birth_date_in_future"),
    }
    assert all(e.message for e in errors)


def test_the_registry_match_needs_names_and_birth_date():
    entry = RegistryEntry("N'Diaye", "Aminata", date(1990, 2, 17))
    assert matches_registry(_form(last_name="ndiaye", first_name="AMINATA", birth_date=date(1990, 2, 17)), entry)
    assert not matches_registry(_form(last_name="ndiaye", first_name="AMINATA", birth_date=date(1990, 2, 18)), entry)
    assert not matches_registry(_form(last_name="Diaye", first_name="Aminata", birth_date=date(1990, 2, 17)), entry)


def test_link_tokens_are_long_random_and_stored_as_a_hash():
    tokens = {new_link_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43  # 256 bits in base64url
    assert token_hash(token) != token.encode() and len(token_hash(token)) == 32
