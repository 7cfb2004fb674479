"""A realistic NOEMIE feed for the demo members and N synthetic ones (tariffs and rates from
the domain note: G 30 €, PF 2 €, franchise 1 € a box, specialists 31,50 € or a 23 € base outside
OPTAM, pharmacy 65/30 %, lab 60 %, class-B glasses at a 0,05 € base…)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from claims.service_layer.noemie import COLUMNS

FIRST = ["Camille", "Louis", "Hélène", "Aminata", "Jean-Pierre", "Thi Mai", "Inès", "Yann", "Zoé", "Karim", "Léa", "Hugo"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "N'Diaye"]


@dataclass(frozen=True)
class Act:
    code: str
    label: str
    weight: int


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _line(rng: random.Random, kind: str):
    """(act_code, label, qty, charged, base, rate, secu_paid, participation, sector, optam)"""
    if kind == "gp":
        sector = rng.choice([1, 1, 1, 2])
        optam = sector == 1 or rng.random() < 0.6
        charged = 3000 if sector == 1 else rng.choice([3500, 4000, 5000])
        return "G", "Consultation médecin généraliste", 1, charged, 3000, 70, 2100 - 200, 200, sector, optam
    if kind == "specialist":
        sector = rng.choice([1, 2, 2])
        optam = sector == 1 or rng.random() < 0.5
        if sector == 1:
            return "CS", "Consultation spécialiste", 1, 3150, 3150, 70, 2205 - 200, 200, 1, True
        base = 3150 if optam else 2300
        charged = rng.choice([5000, 6000, 8000])
        return "CS", "Consultation spécialiste", 1, charged, base, 70, base * 70 // 100 - 200, 200, 2, optam
    if kind in ("ph65", "ph30"):
        qty = rng.randint(1, 3)
        base = rng.randint(300, 3000) * qty
        rate, code = (65, "PH7") if kind == "ph65" else (30, "PH4")
        gross = (base * rate + 50) // 100
        franchise = min(100 * qty, gross)
        return code, "Médicaments", qty, base, base, rate, gross - franchise, franchise, None, None
    if kind == "lab":
        base = rng.randint(1500, 6000)
        gross = (base * 60 + 50) // 100
        return "B", "Analyses de biologie", 1, base, base, 60, gross - 200, 200, None, None
    if kind == "physio":
        qty = rng.randint(1, 10)
        base = 1750 * qty
        gross = (base * 60 + 50) // 100
        franchise = min(100 * qty, 400)
        return "AMK", "Séances de kinésithérapie", qty, base, base, 60, gross - franchise, franchise, None, None
    if kind == "dental":
        return "C", "Consultation dentaire", 1, 2300, 2300, 70, 1610 - 200, 200, 1, True
    if kind == "daily":
        days = rng.randint(1, 5)
        return "FJ", "Forfait journalier hospitalier", days, 2000 * days, 0, 0, 0, 0, None, None
    raise ValueError(kind)


KINDS = [("gp", 30), ("ph65", 22), ("ph30", 10), ("specialist", 12), ("lab", 10), ("physio", 8), ("dental", 5), ("daily", 2)]


def write(args) -> int:
    rng = random.Random(args.seed)
    members: list[str] = []
    if args.members and args.members.exists():
        with args.members.open(newline="", encoding="utf-8-sig") as handle:
            members += [row["membership_number"] for row in csv.DictReader(handle)]
    if args.synthetic:
        if not args.synthetic_members:
            raise ValueError("--synthetic needs --synthetic-members FILE (the members to import into identity)")
        members += write_synthetic_members(args.synthetic_members, args.synthetic, rng)
    if not members:
        raise ValueError("no member to write lines for")
    total = args.lines or 5 * len(members)
    today = date.today()
    first_day = date(today.year, 1, 2)
    span = max(1, (today - first_day).days - 2)
    practitioners = [f"{rng.randint(10**10, 10**11 - 1)}" for _ in range(500)]
    kinds, weights = zip(*KINDS, strict=True)
    written = 0
    decompte = 0
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)

        def decompte_for(number: str, size: int) -> int:
            nonlocal decompte
            decompte += 1
            day = first_day + timedelta(days=rng.randrange(span))
            practitioner = rng.choice(practitioners)
            chosen: list[str] = []
            while len(chosen) < size:  # distinct acts: the same act twice on a day would be a duplicate
                kind = rng.choices(kinds, weights)[0]
                if kind not in chosen:
                    chosen.append(kind)
            for n, kind in enumerate(chosen, start=1):
                code, label, qty, charged, base, rate, paid, part, sector, optam = _line(rng, kind)
                out.writerow([
                    f"D{args.seed}{decompte:09d}", n, number, day.isoformat(), code, label, qty, euros(charged),
                    euros(base), rate, euros(paid), euros(part), practitioner if sector else "",
                    sector or "", "" if optam is None else str(optam).lower(),
                    rng.choice(["member", "member", "practitioner"]),
                ])
            return size

        if args.heavy:
            while written < args.heavy:
                written += decompte_for(members[0], min(rng.randint(1, 4), args.heavy - written))
        while written < total:
            written += decompte_for(rng.choice(members), min(rng.randint(1, 4), total - written))
    return written


def write_synthetic_members(path: Path, count: int, rng: random.Random) -> list[str]:
    """Members for identity's import (with plan_code, role, coverage_start: families of 1–3)."""
    numbers = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date", "plan_code", "role", "coverage_start"])
        i = 0
        while i < count:
            size = min(rng.choice([1, 1, 2, 3]), count - i)
            contract = f"S{8_0000_0000 + i}"
            plan = rng.choice(["ESSENTIEL", "CONFORT"])
            last = rng.choice(LAST)
            for k in range(size):
                number = f"{8_0000_0000 + i}"
                role = "holder" if k == 0 else ("spouse" if k == 1 else "child")
                born = date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28)) if k < 2 else date(2012, 5, 1)
                out.writerow([number, contract, last, rng.choice(FIRST), born.isoformat(), plan, role, f"{date.today().year}-01-01"])
                numbers.append(number)
                i += 1
    return numbers
