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


async def record_enrolment(session: AsyncSession, event: MemberEnrolled, occurred_at) -> tuple[Member | None, bool]:
    """Returns the previous row (None when new) and whether the card changes (beneficiaries or plan)."""
    previous = await session.get(Member, event.member_id)
    before = None
    if previous is not None:
        before = (previous.contract_number, previous.first_name, previous.last_name, previous.birth_date,
                  previous.plan_code, previous.role, previous.coverage_start, previous.coverage_end)
        session.expunge(previous)
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
    after = (event.contract_number, event.first_name, event.last_name, event.birth_date, event.plan_code,
             event.role, event.coverage_start, event.coverage_end)
    return previous, before != after


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


async def of_contract(session: AsyncSession, contract_number: str) -> list[Member]:
    rows = await session.exec(
        select(Member).where(Member.contract_number == contract_number).order_by(Member.birth_date, Member.membership_number)
    )
    return list(rows)


def holder_of(members: list[Member]) -> Member | None:
    """The contract holder: the member enrolled as such, else the eldest (the registry import
    has no role column yet)."""
    for m in members:
        if m.role == "holder":
            return m
    dated = [m for m in members if m.birth_date]
    return min(dated, key=lambda m: m.birth_date) if dated else (members[0] if members else None)
