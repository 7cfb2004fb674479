"""What the three kinds of single-use links (activation, password reset, e-mail change) share."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update

from identity.adapters.tables import ActivationToken, EmailChangeToken, PasswordResetToken

LinkTable = type[ActivationToken] | type[PasswordResetToken] | type[EmailChangeToken]


async def revoke_pending(session, table: LinkTable, account_id: uuid.UUID, now: datetime) -> None:
    """Links sent before a newer one stop working."""
    await session.execute(
        update(table)
        .where(table.account_id == account_id, table.used_at.is_(None), table.revoked_at.is_(None))
        .values(revoked_at=now)
    )
