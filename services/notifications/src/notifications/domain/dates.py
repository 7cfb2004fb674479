"""Dates as a French member reads them."""

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")


def french_datetime(moment: datetime) -> str:
    """2026-11-26T14:05Z → "26 novembre 2026 à 15h05" (Paris time)."""
    local = moment.astimezone(PARIS)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} à {local.hour}h{local.minute:02d}"
