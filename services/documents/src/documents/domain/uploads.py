"""Upload rules: accepted file types (by their first bytes, never by name or declared type), care
types, amounts. Pure: no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# What a member may say the invoice is for (documented in the OpenAPI and the README).
CARE_TYPES: dict[str, str] = {
    "consultation": "Consultation médicale",
    "pharmacy": "Pharmacie",
    "osteopathy": "Ostéopathie",
    "optics": "Optique",
    "dental": "Dentaire",
    "hearing": "Audioprothèse",
    "hospital": "Hospitalisation",
    "other": "Autre",
}

# Bytes needed to recognise every accepted type.
SNIFF_BYTES = 16


@dataclass(frozen=True)
class FileType:
    media_type: str
    extension: str
    label: str


PDF = FileType("application/pdf", "pdf", "PDF")
JPEG = FileType("image/jpeg", "jpg", "JPEG")
PNG = FileType("image/png", "png", "PNG")
HEIC = FileType("image/heic", "heic", "HEIC")

# ISO-BMFF brands of HEIF/HEIC photos (iPhones): "....ftyp<brand>".
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff(head: bytes) -> FileType | None:
    """The file's type from its first bytes, or None when it is not one we accept."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return HEIC
    return None


_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def display_name(filename: str | None, fallback: str) -> str:
    """The member's file name, kept only to show it back (never used as a storage name)."""
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", name).strip(" .")[:120]
    return name or fallback


_AMOUNT = re.compile(r"^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*(?:€|EUR)?\s*$")


def parse_amount_cents(text: str) -> int | None:
    """ "60.00", "60,5", "60" euros → cents; None when it is no amount."""
    match = _AMOUNT.match(text)
    if not match:
        return None
    euros, cents = match[1], (match[2] or "0").ljust(2, "0")
    return int(euros) * 100 + int(cents)


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:g} Mo"
