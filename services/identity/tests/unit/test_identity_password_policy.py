"""The password policy beyond length and character classes: common passwords and personal data."""

from datetime import date

import pytest

from identity.domain.passwords import birth_date_forms, common_passwords, is_common, name_parts, password_violations
from identity.domain.registration import RegistrationForm, form_errors

ZOE = dict(membership_number="912345678", last_name="Lefèvre-N'Diaye", first_name="Zoé", birth_date=date(1985, 4, 12))


def codes(password: str, **personal) -> set[str]:
    return {v.code for v in password_violations(password, **personal)}


def test_the_shipped_list_holds_tens_of_thousands_of_lower_cased_passwords():
    common = common_passwords()
    assert len(common) >= 10_000
    assert {"123456", "password", "azerty", "motdepasse", "p@ssw0rd"} <= common
    assert all(p == p.lower() and not p.startswith("#") for p in common)
    assert common_passwords() is common  # read once


@pytest.mark.parametrize("password", ["P@ssw0rd", "PA$$W0RD", "Ｐ＠ｓｓｗ０ｒｄ", "Azerty2026!", "!!Motdepasse1", "Soleil-75!"])
def test_a_common_password_is_refused_whatever_its_case_width_or_added_digits_and_symbols(password):
    assert "password_too_common" in codes(password)
    assert is_common(password)


@pytest.mark.parametrize("password", ["Espace-2026!ok", "Trois-Chats-Gris!7", "Az1!", ""])
def test_an_uncommon_password_is_not_called_common(password):
    assert not is_common(password)


def test_a_common_password_alone_breaks_only_that_rule():
    assert codes("P@ssw0rd") == {"password_too_common"}


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Clef-912345678!", "password_contains_membership_number"),
        ("Lefevre#2026x", "password_contains_last_name"),
        ("LEFÈVRE#2026x", "password_contains_last_name"),
        ("Ma-diaye-2026!", "password_contains_last_name"),
        ("Zoe-Secret-99!", "password_contains_first_name"),
        ("zoé-SECRET-99!", "password_contains_first_name"),
        ("Clef!12041985x", "password_contains_birth_date"),
        ("Clef!19850412x", "password_contains_birth_date"),
        ("Clef!120485xY", "password_contains_birth_date"),
        ("Clef!1985-04-12x", "password_contains_birth_date"),
        ("Clef!12/04/1985x", "password_contains_birth_date"),
    ],
)
def test_personal_data_in_the_password_is_refused_each_with_its_code(password, code):
    assert code in codes(password, **ZOE)
    assert codes(password) & {code} == set()  # without the personal data, the rule has nothing to compare


def test_name_parts_shorter_than_three_letters_do_not_count():
    assert name_parts("Lefèvre-N'Diaye") == {"lefevre", "diaye"}
    assert name_parts("Li") == set()
    assert "password_contains_last_name" not in codes("Nouveau-Li-2026!", **{**ZOE, "last_name": "Li"})


def test_birth_date_forms_cover_the_usual_writings():
    assert birth_date_forms(date(1985, 4, 12)) >= {"12041985", "19850412", "120485", "1985-04-12", "12/04/1985"}


def test_a_good_password_with_personal_data_given_breaks_no_rule():
    assert codes("Espace-2026!ok", **ZOE) == set()


def test_each_violation_has_a_french_message():
    for violation in password_violations("zoe", **ZOE):
        assert violation.message.startswith("Le mot de passe") or violation.message.startswith("Ce mot de passe")


def test_the_registration_form_checks_the_password_against_what_was_typed_in_it():
    form = RegistrationForm(
        membership_number="912345678", last_name="Lefèvre-N'Diaye", first_name="Zoé", birth_date=date(1985, 4, 12),
        email="z@example.org", email_confirmation="z@example.org", password="Zoe-Lefevre-12041985!",
        password_confirmation="Zoe-Lefevre-12041985!", terms_accepted=True,
    )
    found = {(e.field, e.code) for e in form_errors(form)}
    assert found == {
        ("password", "password_contains_first_name"),
        ("password", "password_contains_last_name"),
        ("password", "password_contains_birth_date"),
    }
