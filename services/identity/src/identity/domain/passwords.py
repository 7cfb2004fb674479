"""The password policy of the registration form."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files

from identity.domain.names import name_key

MIN_LENGTH = 8
MAX_LENGTH = 128
# Shorter parts of a name ("Li", the "N" of "N'Diaye") would refuse too many passwords.
MIN_NAME_PART = 3
# A shorter membership number would match by chance.
MIN_MEMBERSHIP_NUMBER = 4


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


@cache
def common_passwords() -> frozenset[str]:
    """The list shipped in common_passwords.txt (zxcvbn's, lower-cased), read once."""
    text = (files("identity.domain") / "common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


# Digits, punctuation and spaces tacked on at either end: "Azerty2026!" is "azerty" to a cracker.
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def is_common(password: str) -> bool:
    """Case-insensitive, after NFKC: the password itself, or its letters once the digits and
    symbols added at its start or end are taken away, is on the common-password list."""
    key = unicodedata.normalize("NFKC", password).casefold()
    if not key:
        return False
    common = common_passwords()
    if key in common:
        return True
    core = _DECORATION.sub("", key)
    return len(core) >= 4 and core in common


def name_parts(name: str) -> set[str]:
    """"Lefèvre-N'Diaye" → {"lefevre", "diaye"}: each part of MIN_NAME_PART letters or more,
    compared as identity.domain.names.name_key compares names."""
    parts = re.split(r"[\s\-‐‑–—'’`´.]+", unicodedata.normalize("NFKC", name))
    return {key for key in map(name_key, parts) if len(key) >= MIN_NAME_PART}


def birth_date_forms(born: date) -> set[str]:
    d, m, y = f"{born.day:02d}", f"{born.month:02d}", f"{born.year:04d}"
    return {f"{d}{m}{y}", f"{y}{m}{d}", f"{d}{m}{y[2:]}", f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{d}-{m}-{y}", f"{d}.{m}.{y}"}


def password_violations(
    password: str,
    *,
    membership_number: str | None = None,
    last_name: str | None = None,
    first_name: str | None = None,
    birth_date: date | None = None,
) -> list[Violation]:
    """Every rule the password breaks, each with its own French message. The personal data,
    when given, is what the member typed in the same form (never the registry's: the answer
    must not depend on what the registry holds)."""
    password = unicodedata.normalize("NFKC", password)
    found: list[Violation] = []
    if len(password) < MIN_LENGTH:
        found.append(Violation("password_too_short", f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères."))
    if len(password) > MAX_LENGTH:
        found.append(Violation("password_too_long", f"Le mot de passe doit contenir au plus {MAX_LENGTH} caractères."))
    if not any(c.islower() for c in password):
        found.append(Violation("password_no_lowercase", "Le mot de passe doit contenir une lettre minuscule."))
    if not any(c.isupper() for c in password):
        found.append(Violation("password_no_uppercase", "Le mot de passe doit contenir une lettre majuscule."))
    if not any(c.isdigit() for c in password):
        found.append(Violation("password_no_digit", "Le mot de passe doit contenir un chiffre."))
    if all(c.isalnum() for c in password):
        found.append(
            Violation("password_no_special", "Le mot de passe doit contenir un caractère spécial (par exemple ! ? @ # $ %).")
        )
    if is_common(password):
        found.append(
            Violation(
                "password_too_common",
                "Ce mot de passe fait partie des plus courants (ou n'en diffère que par des chiffres ou symboles "
                "ajoutés au début ou à la fin) : choisissez-en un autre.",
            )
        )
    folded = password.casefold()
    number = (membership_number or "").strip().casefold()
    if len(number) >= MIN_MEMBERSHIP_NUMBER and number in folded:
        found.append(
            Violation("password_contains_membership_number", "Le mot de passe ne doit pas contenir votre numéro d'adhérent.")
        )
    letters = name_key(password)
    if last_name and any(part in letters for part in name_parts(last_name)):
        found.append(Violation("password_contains_last_name", "Le mot de passe ne doit pas contenir votre nom."))
    if first_name and any(part in letters for part in name_parts(first_name)):
        found.append(Violation("password_contains_first_name", "Le mot de passe ne doit pas contenir votre prénom."))
    if birth_date and any(form in password for form in birth_date_forms(birth_date)):
        found.append(
            Violation("password_contains_birth_date", "Le mot de passe ne doit pas contenir votre date de naissance.")
        )
    return found
