"""Inbox: remember which events a consumer has handled, in the same transaction as the effect."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.contracts.envelope import Envelope

_CLAIM = text(
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES (:consumer, :event_id, :event_type)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim(session: AsyncSession, consumer: str, envelope: Envelope) -> bool:
    """True the first time this consumer sees the event; False for a redelivery."""
    result = await session.execute(
        _CLAIM, {"consumer": consumer, "event_id": envelope.event_id, "event_type": envelope.event_type}
    )
    return result.first() is not None
