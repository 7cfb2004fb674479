"""Valuing one care line against a beneficiary's guarantees: the mutuelle's share, what the
member keeps, or why the line is rejected. Pure: the ceiling consumption the line meets is a
`Ledger` the caller loaded (and locked) for the beneficiary, and that the valuation updates.

Rules (domain note §1.1, §2.1):
- secu_gross = BR × Sécu rate, before the participation forfaitaire / franchises (which the Sécu
  deducts and a contrat responsable never reimburses). When the feed's own figures say more
  (secu_paid + participation), they win: the mutuelle never pays what the Sécu already paid.
- "x % BR, Sécu included": min(charged − secu_gross, x·BR − secu_gross), never below 0.
- forfaits, per-session amounts, real costs, 100 % Santé: min(charged − secu_gross, what remains
  of each ceiling).
- Ceilings are per beneficiary and period; a rolling window counts every use closer than its
  length to the care date, on either side, so no window ever holds more than the ceiling
  whatever the order lines arrive in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from claims.domain.money import euros_fr, percent_of
from claims.domain.plans import CeilingGroup, Formula, Guarantee, Period, Plan

REASONS = {
    "not_covered_on_date": "Le bénéficiaire n'était pas couvert à la date des soins.",
    "not_covered": "Cet acte n'est pas pris en charge par votre garantie.",
    "ceiling_reached": "Le plafond de votre garantie est atteint pour cette période.",
    "renewal_period": "Le délai de renouvellement de l'équipement n'est pas écoulé.",
    "duplicate": "Ces soins ont déjà été remboursés.",
    "missing_document": "Il manque un justificatif (facture acquittée, devis…).",
}


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return date(year, month, min(day.day, last[month - 1]))


def in_window(period: Period, around: date, other: date) -> bool:
    if period is Period.CALENDAR_YEAR:
        return other.year == around.year
    months = 24 if period is Period.ROLLING_24_MONTHS else 48
    return add_months(around, -months) < other < add_months(around, months)


@dataclass(frozen=True)
class Use:
    care_date: date
    amount_cents: int
    sessions: int


@dataclass
class Ledger:
    """What one beneficiary has consumed, by ceiling key ("post:X", "group:Y")."""

    uses: dict[str, list[Use]] = field(default_factory=lambda: defaultdict(list))

    def add(self, keys: list[str], use: Use) -> None:
        for key in keys:
            self.uses[key].append(use)

    def used(self, key: str, period: Period, around: date) -> tuple[int, int]:
        amount = sessions = 0
        for use in self.uses.get(key, ()):
            if in_window(period, around, use.care_date):
                amount += use.amount_cents
                sessions += use.sessions
        return amount, sessions

    def equipment_dates(self, key: str, period: Period, around: date) -> set[date]:
        net: dict[date, int] = defaultdict(int)
        for use in self.uses.get(key, ()):
            if in_window(period, around, use.care_date):
                net[use.care_date] += use.amount_cents
        return {day for day, amount in net.items() if amount > 0}


@dataclass(frozen=True)
class CareLine:
    care_date: date
    act_code: str
    quantity: int
    charged_cents: int
    base_cents: int
    secu_rate_pct: int
    secu_paid_cents: int
    participation_cents: int
    optam_level: bool  # OPTAM/OPTAM-CO or secteur 1: the "OPTAM" rate applies


@dataclass(frozen=True)
class Coverage:
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Valuation:
    status: str  # "paid" or "rejected"
    mutuelle_cents: int
    out_of_pocket_cents: int
    secu_gross_cents: int
    guarantee: Guarantee | None = None
    reason_code: str | None = None
    ceiling_keys: tuple[str, ...] = ()
    sessions: int = 0
    capped: bool = False

    @property
    def reason(self) -> str | None:
        return REASONS.get(self.reason_code) if self.reason_code else None


def secu_gross(line: CareLine) -> int:
    return max(percent_of(line.base_cents, line.secu_rate_pct), line.secu_paid_cents + line.participation_cents)


def _reject(line: CareLine, code: str, gross: int, guarantee: Guarantee | None = None) -> Valuation:
    return Valuation("rejected", 0, max(0, line.charged_cents - line.secu_paid_cents), gross, guarantee, code)


def value_line(plan: Plan | None, coverage: Coverage | None, line: CareLine, ledger: Ledger) -> Valuation:
    gross = secu_gross(line)
    if coverage is None or not coverage.covers(line.care_date):
        return _reject(line, "not_covered_on_date", gross)
    guarantee = plan.guarantee_for(line.act_code, line.optam_level) if plan else None
    if guarantee is None:
        return _reject(line, "not_covered", gross)
    room = max(0, line.charged_cents - gross)

    sessions = 0
    if guarantee.formula is Formula.PCT_BR:
        share = max(0, min(room, percent_of(line.base_cents, guarantee.rate_pct or 0) - gross))
    elif guarantee.formula is Formula.PER_SESSION:
        sessions = max(1, line.quantity)
        if guarantee.sessions is not None and guarantee.period is not None:
            _, done = ledger.used(f"post:{guarantee.post}", guarantee.period, line.care_date)
            sessions = min(sessions, max(0, guarantee.sessions - done))
            if sessions == 0:
                return _reject(line, "ceiling_reached", gross, guarantee)
        share = min(room, (guarantee.amount_cents or 0) * sessions)
    else:  # forfait, real costs, 100 % Santé: what the Sécu left, within the ceilings below
        share = room

    keys: list[str] = []
    limits: list[tuple[str, int | None, Period | None, CeilingGroup | None]] = []
    if guarantee.limited:
        keys.append(f"post:{guarantee.post}")
        limits.append((keys[-1], guarantee.own_ceiling(), guarantee.period, None))
    group = plan.groups.get(guarantee.group) if plan and guarantee.group else None
    if group is not None:
        keys.append(f"group:{group.name}")
        limits.append((keys[-1], group.ceiling_cents, group.period, group))

    capped = False
    for key, ceiling, period, grp in limits:
        if period is None:
            continue
        if grp is not None and grp.renewal is not None:
            dates = ledger.equipment_dates(key, period, line.care_date)
            if line.care_date not in dates and len(dates) >= grp.renewal:
                return _reject(line, "renewal_period", gross, guarantee)
        if ceiling is not None:
            used, _ = ledger.used(key, period, line.care_date)
            remaining = max(0, ceiling - used)
            if share > remaining:
                share, capped = remaining, True
    if capped and share == 0:
        return _reject(line, "ceiling_reached", gross, guarantee)

    if keys:
        ledger.add(keys, Use(line.care_date, share, sessions))
    return Valuation(
        "paid", share, line.charged_cents - line.secu_paid_cents - share, gross, guarantee, None, tuple(keys), sessions, capped
    )


def explanation(v: Valuation) -> str:
    """One sentence for the member about how the line was valued."""
    if v.status == "rejected":
        return v.reason or "Ligne rejetée."
    assert v.guarantee is not None
    text = f"Remboursé selon votre garantie « {v.guarantee.label} » : {v.guarantee.words()}."
    if v.capped:
        text += " Le plafond de la garantie a limité le remboursement."
    return text


__all__ = ["CareLine", "Coverage", "Ledger", "Use", "Valuation", "value_line", "explanation", "euros_fr", "REASONS"]
