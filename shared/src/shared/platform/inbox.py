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


async def claim_many(session: AsyncSession, consumer: str, envelopes: list[Envelope]) -> set:
    """The event ids of `envelopes` this consumer has not handled yet, now claimed: one
    statement for a whole batch."""
    if not envelopes:
        return set()
    result = await session.execute(
        _CLAIM_MANY,
        {
            "consumer": consumer,
            "event_ids": [e.event_id for e in envelopes],
            "event_types": [e.event_type for e in envelopes],
        },
    )
    return {row[0] for row in result}


_CLAIM_MANY = text(
    "INSERT INTO inbox (consumer, event_id, event_type)"
    " SELECT :consumer, e.id, e.type FROM unnest(CAST(:event_ids AS uuid[]), CAST(:event_types AS text[])) AS e(id, type)"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)
