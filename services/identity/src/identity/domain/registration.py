"""Rules of the registration form, beyond the types checked when the request is parsed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from identity.domain.names import name_key
from identity.domain.passwords import password_violations
from shared.platform.problems import FieldError, field_error


@dataclass(frozen=True)
class RegistrationForm:
    membership_number: str
    last_name: str
    first_name: str
    birth_date: date
    email: str
    email_confirmation: str
    password: str
    password_confirmation: str
    terms_accepted: bool
    paperless: bool = True


def form_errors(form: RegistrationForm) -> list[FieldError]:
    errors: list[FieldError] = []
    if form.email.casefold() != form.email_confirmation.casefold():
        errors.append(field_error("email_confirmation", "email_mismatch", "Les deux adresses e-mail ne sont pas identiques."))
    # The personal data as typed in this form: checking the registry's instead would tell
    # whoever fills the form in something about the registry.
    violations = password_violations(
        form.password,
        membership_number=form.membership_number,
        last_name=form.last_name,
        first_name=form.first_name,
        birth_date=form.birth_date,
    )
    errors += [field_error("password", v.code, v.message) for v in violations]
    if form.password != form.password_confirmation:
        errors.append(
            field_error("password_confirmation", "password_mismatch", "Les deux mots de passe ne sont pas identiques.")
        )
    if not form.terms_accepted:
        errors.append(
            field_error("terms_accepted", "terms_not_accepted", "Vous devez accepter les conditions générales d'utilisation.")
        )
    if form.birth_date > date.today():
        errors.append(field_error("birth_date", "birth_date_in_future", "La date de naissance ne peut pas être dans le futur."))
    return errors


@dataclass(frozen=True)
class RegistryEntry:
    last_name: str
    first_name: str
    birth_date: date


def matches_registry(form: RegistrationForm, entry: RegistryEntry) -> bool:
    return (
        name_key(form.last_name) == name_key(entry.last_name)
        and name_key(form.first_name) == name_key(entry.first_name)
        and form.birth_date == entry.birth_date
    )
