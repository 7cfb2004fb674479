"""The password policy of the registration form."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MIN_LENGTH = 8
MAX_LENGTH = 128


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


def password_violations(password: str) -> list[Violation]:
    """Every rule the password breaks, each with its own French message."""
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
    return found
