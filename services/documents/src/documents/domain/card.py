"""The tiers-payant card's harmonised block and our documented Data Matrix payload.

Payload (the Inter-AMC standard's own is not public), UTF-8, fields separated by '|':

    ESPACE-TP1|AMC:<numéro AMC>|CONV:<type de convention>|CSR:<critère secondaire de routage>
    |ADH:<numéro d'adhérent>|CTR:<contrat>|DEB:<AAAAMMJJ>|FIN:<AAAAMMJJ>|R:<1 responsable, 0 non>
    |BEN:<number of beneficiaries>|DOM:<domain codes, comma-separated>

A professional's software reads the five mandatory labels (AMC, CONV, CSR, ADH, validity) from it.
"""

from __future__ import annotations

from datetime import date

# Tiers-payant domains printed on the card, with the level (% of BR, Sécu included).
DOMAINS: list[tuple[str, str, str]] = [
    ("PHAR", "Pharmacie", "100 %"),
    ("MED", "Médecins", "100 %"),
    ("LABO", "Laboratoires", "100 %"),
    ("RADL", "Radiologie", "100 %"),
    ("AUXM", "Auxiliaires médicaux", "100 %"),
    ("DENT", "Dentaire", "100 %"),
    ("OPTI", "Optique", "Sur devis"),
    ("HOSP", "Hospitalisation", "100 %"),
]


def validity(today: date) -> tuple[date, date]:
    """A card is valid for the calendar year."""
    return date(today.year, 1, 1), date(today.year, 12, 31)


def payload(*, amc: str, convention: str, routing: str, membership_number: str, contract_number: str,
            valid_from: date, valid_to: date, responsable: bool, beneficiaries: int, domains: list[str]) -> str:
    return "|".join([
        "ESPACE-TP1", f"AMC:{amc}", f"CONV:{convention}", f"CSR:{routing}", f"ADH:{membership_number}",
        f"CTR:{contract_number}", f"DEB:{valid_from:%Y%m%d}", f"FIN:{valid_to:%Y%m%d}", f"R:{1 if responsable else 0}",
        f"BEN:{beneficiaries}", "DOM:" + ",".join(domains),
    ])
