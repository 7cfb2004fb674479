"""The member's contact details: a postal address letters can be sent to, and a phone number
in E.164. Pure rules, each broken one a field error with a stable code and a French message."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from shared.platform.problems import FieldError, field_error

# French postal standard NF Z10-011: 38 characters a line; the city shares its line with the
# 5-digit postal code and a space.
LINE_MAX = 38
CITY_MAX = 32
# Countries and territories with La Poste's 5-digit postal codes (Monaco included).
FRENCH_POSTAL_CODES = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "MC"})
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_FRENCH_POSTAL_CODE = re.compile(r"^(?!00)\d{5}$")
_OTHER_POSTAL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{0,8}[A-Z0-9]$")


@dataclass(frozen=True)
class PostalAddress:
    line1: str
    line2: str | None
    postal_code: str
    city: str
    country: str


def clean_text(value: str | None) -> str | None:
    """NFKC, spaces collapsed, ends trimmed; empty → None."""
    if value is None:
        return None
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    return text or None


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c).startswith("C") for c in value)


def clean_address(
    *, line1: str | None, line2: str | None, postal_code: str | None, city: str | None, country: str | None = "FR",
    prefix: str = "postal_address",
) -> tuple[PostalAddress | None, list[FieldError]]:
    """The address as it will be stored, or the errors (field names under `prefix`)."""
    errors: list[FieldError] = []
    line1, line2, city = clean_text(line1), clean_text(line2), clean_text(city)
    postal_code = (clean_text(postal_code) or "").upper() or None
    country = (clean_text(country) or "FR").upper()

    for name, value, limit in (("line1", line1, LINE_MAX), ("line2", line2, LINE_MAX), ("city", city, CITY_MAX)):
        if value is None:
            if name != "line2":
                errors.append(field_error(f"{prefix}.{name}", "required", "Ce champ est obligatoire."))
        elif _has_control(value):
            errors.append(field_error(f"{prefix}.{name}", "invalid_characters", "Ce champ contient des caractères non autorisés."))
        elif len(value) > limit:
            errors.append(
                field_error(f"{prefix}.{name}", "too_long", f"Ce champ doit contenir au plus {limit} caractères.")
            )
    if not _COUNTRY.match(country):
        errors.append(
            field_error(f"{prefix}.country", "invalid_country", "Le pays doit être un code à deux lettres (par exemple FR).")
        )
    if postal_code is None:
        errors.append(field_error(f"{prefix}.postal_code", "required", "Ce champ est obligatoire."))
    elif country in FRENCH_POSTAL_CODES:
        if not _FRENCH_POSTAL_CODE.match(postal_code):
            errors.append(
                field_error(f"{prefix}.postal_code", "invalid_postal_code", "Le code postal doit comporter 5 chiffres.")
            )
    elif not _OTHER_POSTAL_CODE.match(postal_code):
        errors.append(field_error(f"{prefix}.postal_code", "invalid_postal_code", "Le code postal n'est pas valide."))
    if errors:
        return None, errors
    return PostalAddress(line1=line1, line2=line2, postal_code=postal_code, city=city, country=country), []


# French numbers whose E.164 country code is not +33: overseas departments and territories,
# found by the first three digits after the trunk 0 (ARCEP numbering plan).
_OVERSEAS = {
    "590": "590", "690": "590", "691": "590",  # Guadeloupe, Saint-Barthélemy, Saint-Martin
    "594": "594", "694": "594",  # Guyane
    "596": "596", "696": "596", "697": "596",  # Martinique
    "262": "262", "692": "262", "693": "262",  # La Réunion
    "269": "262", "639": "262",  # Mayotte
    "508": "508",  # Saint-Pierre-et-Miquelon
}
_SEPARATORS = re.compile(r"[\s.\-/()]")
PHONE_ERROR_CODE = "invalid_phone"
PHONE_ERROR_MESSAGE = "Le numéro de téléphone n'est pas valide (par exemple 06 12 34 56 78 ou +33 6 12 34 56 78)."


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """A French number as people write it (06 12 34 56 78, 06.12.34.56.78, +33 6 12 34 56 78,
    +33 (0)6 12 34 56 78, 0033 6 12 34 56 78) → E.164 (+33612345678); overseas numbers get their
    own country code (0690 12 34 56 → +590690123456). A foreign number must be written with its
    +country code and is kept as such (8 to 15 digits)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    text = text.replace("(0)", "")
    text = _SEPARATORS.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit() or not digits.isascii():
            raise InvalidPhone(raw)
        if digits.startswith("33"):
            national = digits[2:]
            if national.startswith("0"):
                national = national[1:]
            return _french(national, raw)
        if not 8 <= len(digits) <= 15 or digits.startswith("0"):
            raise InvalidPhone(raw)
        return "+" + digits
    if text.isdigit() and text.isascii() and len(text) == 10 and text.startswith("0"):
        return _french(text[1:], raw)
    raise InvalidPhone(raw)


def _french(national: str, raw: str) -> str:
    if len(national) != 9 or not national.isdigit() or national[0] == "0":
        raise InvalidPhone(raw)
    return "+" + _OVERSEAS.get(national[:3], "33") + national


def phone_error(field_name: str = "phone") -> FieldError:
    return field_error(field_name, PHONE_ERROR_CODE, PHONE_ERROR_MESSAGE)
