"""Money in integer cents: parsing the feed's "12.34" strings exactly, percentages rounded half
up, French display. No float anywhere on the path."""

from __future__ import annotations

import re

_EUROS = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


def parse_euros(text: str) -> int:
    """ "12.34" → 1234, "12" → 1200, "12.5" → 1250. Negative or other forms are refused
    (ValueError): the feed writes amounts with a dot and two decimals."""
    match = _EUROS.match(text.strip())
    if not match:
        raise ValueError(f"montant invalide : {text!r} (attendu : 12.34)")
    whole, decimals = match.groups()
    return int(whole) * 100 + int((decimals or "0").ljust(2, "0"))


def percent_of(cents: int, pct: int) -> int:
    """`pct` % of `cents`, rounded half up to the cent (integers only)."""
    return (cents * pct + 50) // 100


def euros_fr(cents: int) -> str:
    """1234 → "12,34 €", 10000 → "100 €" (the way a French statement prints it)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped} €" if rest == 0 else f"{sign}{grouped},{rest:02d} €"
