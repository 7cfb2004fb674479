"""Import of the member registry from the insurer's back office (CSV)."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert

from identity.adapters.tables import Member
from identity.domain.names import name_key
from shared.contracts.identity import MemberEnrolled
from shared.platform.db import Database
from shared.platform.outbox import record_event

COLUMNS = ("membership_number", "contract_number", "last_name", "first_name", "birth_date")


@dataclass(frozen=True)
class RegistryRow:
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    birth_date: date


def read_csv(path: Path) -> list[RegistryRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        rows = []
        for line_no, raw in enumerate(reader, start=2):
            try:
                rows.append(
                    RegistryRow(
                        membership_number=raw["membership_number"].strip(),
                        contract_number=raw["contract_number"].strip(),
                        last_name=raw["last_name"].strip(),
                        first_name=raw["first_name"].strip(),
                        birth_date=date.fromisoformat(raw["birth_date"].strip()),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
            if not all((rows[-1].membership_number, rows[-1].contract_number, rows[-1].last_name, rows[-1].first_name)):
                raise ValueError(f"{path}:{line_no}: empty field")
    return rows


async def import_members(db: Database, rows: Iterable[RegistryRow]) -> int:
    """Upsert by membership number; each new or changed member is announced as MemberEnrolled."""
    count = 0
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for row in rows:
            values = {
                "id": uuid.uuid4(),
                "membership_number": row.membership_number,
                "contract_number": row.contract_number,
                "last_name": row.last_name,
                "first_name": row.first_name,
                "last_name_key": name_key(row.last_name),
                "first_name_key": name_key(row.first_name),
                "birth_date": row.birth_date,
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
                    ),
                )
                .returning(Member.id)
            )
            member_id = (await session.execute(statement)).scalar_one_or_none()
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
                ),
                key=str(member_id),
                producer="identity",
            )
    return count
