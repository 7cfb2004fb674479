"""claims's use cases. For now it only learns who has an online space."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from claims.adapters.tables import Member
from shared.contracts.identity import MemberRegistered


async def record_member(session: AsyncSession, event: MemberRegistered) -> None:
    await session.merge(
        Member(member_id=event.member_id, account_id=event.account_id, paperless=event.paperless,
               registered_at=event.registered_at)
    )
