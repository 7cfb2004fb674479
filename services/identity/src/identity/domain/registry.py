"""The registry's contracts (pure): who is the holder, which plan, which coverage, for each row
of an import.

- Members sharing a `contract_number` are the beneficiaries of one contract.
- The holder is the row with `role=holder`; when the file names none for a contract, the first
  row of that contract without a role, unless the registry already has a holder for it (a file
  that only adds a child does not make the child the holder).
- A non-holder row without a role is a `child` when under 18 on its coverage start, a `spouse`
  otherwise (old files have no role column; the guess is written down, not hidden).
- The plan is the contract's: rows of one contract that give one must agree; without one, the
  plan the registry already has for the contract, else the default plan.
- Coverage starts on the date given, else on the date already known, else on 1 January of the
  import's year; it ends on the date given (an empty `coverage_end` in a file with that column
  reopens it), else stays as known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

ROLES = ("holder", "spouse", "child")
PLAN_CODE = re.compile(r"^[A-Z0-9_]{1,32}$")
ADULT_AGE = 18


@dataclass(frozen=True)
class RegistryRow:
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    birth_date: date
    plan_code: str | None = None
    role: str | None = None
    coverage_start: date | None = None
    coverage_end: date | None = None
    # Whether the file had a coverage_end column (so that an empty cell means "no end").
    coverage_end_given: bool = False
    line: int = 0


@dataclass(frozen=True)
class Known:
    """What the registry already holds for a member."""

    contract_number: str
    plan_code: str | None
    role: str | None
    coverage_start: date | None
    coverage_end: date | None


@dataclass(frozen=True)
class Resolved:
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    birth_date: date
    plan_code: str
    role: str
    coverage_start: date
    coverage_end: date | None


class RegistryError(ValueError):
    pass


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def resolve(
    rows: list[RegistryRow],
    known: dict[str, Known],
    *,
    today: date,
    default_plan: str,
    known_plans: dict[str, str] | None = None,
    known_holders: dict[str, str] | None = None,
) -> list[Resolved]:
    """Every row with its plan, role and coverage settled. `known` is keyed by membership number;
    `known_plans` / `known_holders` by contract number (the registry's plan and holder's
    membership number). Raises RegistryError naming the line for a contract the file makes
    inconsistent (two holders, two plans)."""
    known_plans = known_plans or {}
    known_holders = known_holders or {}
    by_contract: dict[str, list[RegistryRow]] = {}
    for row in rows:
        by_contract.setdefault(row.contract_number, []).append(row)

    holders: dict[str, str] = {}  # contract → membership number
    plans: dict[str, str] = {}
    for contract, members in by_contract.items():
        named = [r for r in members if r.role == "holder"]
        if len(named) > 1:
            raise RegistryError(f"line {named[1].line}: contract {contract} has two holders")
        if named:
            holders[contract] = named[0].membership_number
        else:
            previous = known_holders.get(contract)
            if previous is not None and any(r.membership_number == previous and r.role is None for r in members):
                holders[contract] = previous
            elif previous is None:
                first = next((r for r in members if r.role is None), None)
                if first is None:
                    raise RegistryError(f"line {members[0].line}: contract {contract} has no holder")
                holders[contract] = first.membership_number
        given = {r.plan_code for r in members if r.plan_code}
        if len(given) > 1:
            raise RegistryError(f"line {members[-1].line}: contract {contract} has two plans ({', '.join(sorted(given))})")
        plans[contract] = given.pop() if given else known_plans.get(contract) or default_plan

    resolved = []
    for row in rows:
        before = known.get(row.membership_number)
        same_contract = before is not None and before.contract_number == row.contract_number
        start = row.coverage_start or (before.coverage_start if same_contract else None) or date(today.year, 1, 1)
        if row.coverage_end_given:
            end = row.coverage_end
        else:
            end = before.coverage_end if same_contract else None
        if end is not None and end < start:
            raise RegistryError(f"line {row.line}: coverage_end {end} is before coverage_start {start}")
        if holders.get(row.contract_number) == row.membership_number:
            role = "holder"
        elif row.role is not None:
            role = row.role
        elif same_contract and before.role in ("spouse", "child"):
            role = before.role
        else:
            role = "child" if age_on(row.birth_date, start) < ADULT_AGE else "spouse"
        resolved.append(
            Resolved(
                membership_number=row.membership_number,
                contract_number=row.contract_number,
                last_name=row.last_name,
                first_name=row.first_name,
                birth_date=row.birth_date,
                plan_code=plans[row.contract_number],
                role=role,
                coverage_start=start,
                coverage_end=end,
            )
        )
    return resolved


def parse_role(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    if not value:
        return None
    if value not in ROLES:
        raise RegistryError(f"role must be one of {', '.join(ROLES)}, not {value!r}")
    return value


def parse_plan(value: str | None) -> str | None:
    value = (value or "").strip().upper()
    if not value:
        return None
    if not PLAN_CODE.match(value):
        raise RegistryError(f"plan_code {value!r} is not a plan code (capital letters, digits, _)")
    return value


def parse_date(value: str | None, column: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise RegistryError(f"{column} {value!r} is not an ISO date (YYYY-MM-DD)") from exc


