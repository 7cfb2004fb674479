"""The member projection, fed by identity's events. Rows may be created by any of them first
(the registry import, the registration, a profile change), so each one upserts only its part."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.tables import Member
from shared.contracts.identity import (
    CommunicationPreferencesChanged,
    MemberEnrolled,
    MemberRegistered,
    ProfileUpdated,
)


async def _upsert(session: AsyncSession, member_id: uuid.UUID, values: dict) -> None:
    statement = insert(Member.__table__).values(member_id=member_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["member_id"], set_=values))


async def record_member(session: AsyncSession, event: MemberRegistered) -> None:
    await _upsert(session, event.member_id, {
        "account_id": event.account_id, "paperless": event.paperless, "registered_at": event.registered_at,
    })


# What of a member the card prints: a change to one of them reissues the contract's card.
_ON_THE_CARD = ("contract_number", "first_name", "last_name", "birth_date", "plan_code", "role", "coverage_start",
                "coverage_end")


async def record_enrolment(session: AsyncSession, event: MemberEnrolled, occurred_at) -> tuple[str | None, bool]:
    """Returns the contract the member was on before (None when new) and whether the card
    changes (beneficiaries or plan). Core statements, no ORM object: this runs for every
    MemberEnrolled of an import."""
    table = Member.__table__
    row = (await session.execute(select(*(table.c[f] for f in _ON_THE_CARD)).where(table.c.member_id == event.member_id))).first()
    values = {
        "membership_number": event.membership_number,
        "contract_number": event.contract_number,
        "first_name": event.first_name,
        "last_name": event.last_name,
        "birth_date": event.birth_date,
        "plan_code": event.plan_code,
        "role": event.role,
        "coverage_start": event.coverage_start,
        "coverage_end": event.coverage_end,
        "enrolled_at": occurred_at,
    }
    await _upsert(session, event.member_id, values)
    before = tuple(row) if row is not None else None
    return (row.contract_number if row is not None else None), before != tuple(values[f] for f in _ON_THE_CARD)


async def record_address(session: AsyncSession, event: ProfileUpdated) -> None:
    address = event.postal_address.model_dump() if event.postal_address else None
    await _upsert(session, event.member_id, {"postal_address": address})


async def record_preferences(session: AsyncSession, event: CommunicationPreferencesChanged) -> None:
    # Takes effect for the next document: nothing already issued is re-routed.
    await _upsert(session, event.member_id, {"paperless": event.paperless})


async def get(session: AsyncSession, member_id: uuid.UUID) -> Member | None:
    return await session.get(Member, member_id)


async def by_membership_number(session: AsyncSession, number: str) -> Member | None:
    return (await session.exec(select(Member).where(Member.membership_number == number))).first()


async def of_contract(session: AsyncSession, contract_number: str, *, for_update: bool = False) -> list[Member]:
    query = select(Member).where(Member.contract_number == contract_number).order_by(Member.birth_date, Member.membership_number)
    if for_update:  # as the database has them now, whatever this session read before
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(await session.exec(query))


def holder_of(members: list[Member]) -> Member | None:
    """The contract holder: the member enrolled as such, else the eldest (the registry import
    has no role column yet)."""
    for m in members:
        if m.role == "holder":
            return m
    dated = [m for m in members if m.birth_date]
    return min(dated, key=lambda m: m.birth_date) if dated else (members[0] if members else None)
