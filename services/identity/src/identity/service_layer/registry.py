"""Import of the member registry from the insurer's back office (CSV).

Required columns: membership_number, contract_number, last_name, first_name, birth_date.
Optional: plan_code, role (holder, spouse, child), coverage_start, coverage_end (ISO dates).
How a contract's holder, plan and coverage are settled: identity.domain.registry.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select

from identity.adapters.tables import Member
from identity.domain.names import name_key
from identity.domain.registry import Known, RegistryError, RegistryRow, Resolved, parse_date, parse_plan, parse_role
from identity.domain.registry import resolve
from shared.contracts.identity import MemberEnrolled
from shared.platform.db import Database
from shared.platform.outbox import record_event

COLUMNS = ("membership_number", "contract_number", "last_name", "first_name", "birth_date")
OPTIONAL_COLUMNS = ("plan_code", "role", "coverage_start", "coverage_end")
# The demo plan a member gets when neither the file nor the registry names one.
DEFAULT_PLAN = "ESSENTIEL"

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "DEFAULT_PLAN", "RegistryRow", "read_csv", "import_members"]


def read_csv(path: Path) -> list[RegistryRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in fieldnames]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        end_given = "coverage_end" in fieldnames
        rows = []
        seen: dict[str, int] = {}
        for line_no, raw in enumerate(reader, start=2):
            try:
                row = RegistryRow(
                    membership_number=(raw["membership_number"] or "").strip(),
                    contract_number=(raw["contract_number"] or "").strip(),
                    last_name=(raw["last_name"] or "").strip(),
                    first_name=(raw["first_name"] or "").strip(),
                    birth_date=date.fromisoformat((raw["birth_date"] or "").strip()),
                    plan_code=parse_plan(raw.get("plan_code")),
                    role=parse_role(raw.get("role")),
                    coverage_start=parse_date(raw.get("coverage_start"), "coverage_start"),
                    coverage_end=parse_date(raw.get("coverage_end"), "coverage_end"),
                    coverage_end_given=end_given,
                    line=line_no,
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
            if not all((row.membership_number, row.contract_number, row.last_name, row.first_name)):
                raise ValueError(f"{path}:{line_no}: empty field")
            if row.membership_number in seen:
                raise ValueError(f"{path}:{line_no}: membership number already on line {seen[row.membership_number]}")
            seen[row.membership_number] = line_no
            rows.append(row)
    return rows


async def _known(session, rows: list[RegistryRow]):
    numbers = [r.membership_number for r in rows]
    contracts = sorted({r.contract_number for r in rows})
    members = (
        await session.exec(
            select(Member).where(or_(Member.membership_number.in_(numbers), Member.contract_number.in_(contracts)))
        )
    ).all()
    known = {
        m.membership_number: Known(m.contract_number, m.plan_code, m.role, m.coverage_start, m.coverage_end)
        for m in members
    }
    plans = {m.contract_number: m.plan_code for m in members if m.plan_code}
    holders = {m.contract_number: m.membership_number for m in members if m.role == "holder"}
    return known, plans, holders, members


def _plan_followers(members: list[Member], rows: list[RegistryRow], resolved: list[Resolved]) -> list[Resolved]:
    """The plan is the contract's: members of a contract whose plan the file changes, but who
    are not in the file themselves, take the new plan too."""
    in_file = {r.membership_number for r in rows}
    new_plans = {r.contract_number: r.plan_code for r in resolved}
    followers = []
    for m in members:
        plan = new_plans.get(m.contract_number)
        if m.membership_number in in_file or plan is None or m.plan_code == plan or m.role is None:
            continue
        followers.append(
            Resolved(m.membership_number, m.contract_number, m.last_name, m.first_name, m.birth_date, plan, m.role,
                     m.coverage_start or date(datetime.now(UTC).year, 1, 1), m.coverage_end)
        )
    return followers


async def import_members(db: Database, rows: Iterable[RegistryRow], *, default_plan: str = DEFAULT_PLAN) -> int:
    """Upsert by membership number; each new or changed member is announced as MemberEnrolled
    (with its plan, role and coverage). All or nothing: a bad contract refuses the whole file."""
    rows = list(rows)
    count = 0
    now = datetime.now(UTC)
    async with db.transaction() as session:
        known, plans, holders, members = await _known(session, rows)
        try:
            resolved = resolve(rows, known, today=now.date(), default_plan=default_plan, known_plans=plans,
                               known_holders=holders)
        except RegistryError as exc:
            raise ValueError(str(exc)) from exc
        for row in resolved + _plan_followers(members, rows, resolved):
            member_id = await _upsert(session, row, now)
            if member_id is None:
                continue
            count += 1
            await record_event(
                session,
                MemberEnrolled(
                    member_id=member_id,
                    membership_number=row.membership_number,
                    contract_number=row.contract_number,
                    last_name=row.last_name,
                    first_name=row.first_name,
                    birth_date=row.birth_date,
                    plan_code=row.plan_code,
                    role=row.role,
                    coverage_start=row.coverage_start,
                    coverage_end=row.coverage_end,
                ),
                key=str(member_id),
                producer="identity",
            )
    return count


async def _upsert(session, row: Resolved, now: datetime) -> uuid.UUID | None:
    values = {
        "id": uuid.uuid4(),
        "membership_number": row.membership_number,
        "contract_number": row.contract_number,
        "last_name": row.last_name,
        "first_name": row.first_name,
        "last_name_key": name_key(row.last_name),
        "first_name_key": name_key(row.first_name),
        "birth_date": row.birth_date,
        "plan_code": row.plan_code,
        "role": row.role,
        "coverage_start": row.coverage_start,
        "coverage_end": row.coverage_end,
        "updated_at": now,
    }
    changed = {k: v for k, v in values.items() if k not in ("id", "membership_number")}
    statement = (
        insert(Member)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["membership_number"],
            set_=changed,
            # Unchanged rows are left alone and announce nothing.
            where=(
                (Member.contract_number != row.contract_number)
                | (Member.last_name != row.last_name)
                | (Member.first_name != row.first_name)
                | (Member.birth_date != row.birth_date)
                | Member.plan_code.is_distinct_from(row.plan_code)
                | Member.role.is_distinct_from(row.role)
                | Member.coverage_start.is_distinct_from(row.coverage_start)
                | Member.coverage_end.is_distinct_from(row.coverage_end)
            ),
        )
        .returning(Member.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()
