"""Per-account counters of recent actions (table account_throttle), for limits such as "at most
3 account-exists e-mails an hour" or "5 wrong passwords at a re-check in 15 minutes".

Call these inside a transaction that holds the account row (SELECT ... FOR UPDATE), so two
requests for the same account count one after the other."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import select

from identity.adapters.tables import AccountThrottle

ACCOUNT_EXISTS_NOTICE = "account_exists_notice"
PASSWORD_RECHECK = "password_recheck"

# No limit looks further back than this: older rows are deleted as new ones come in.
_KEEP = timedelta(days=1)


async def count_since(session, account_id: uuid.UUID, action: str, since: datetime) -> int:
    result = await session.exec(
        select(func.count())
        .select_from(AccountThrottle)
        .where(AccountThrottle.account_id == account_id, AccountThrottle.action == action, AccountThrottle.at > since)
    )
    return int(result.one())


async def note(session, account_id: uuid.UUID, action: str, now: datetime) -> AccountThrottle:
    await session.execute(
        delete(AccountThrottle).where(AccountThrottle.account_id == account_id, AccountThrottle.at < now - _KEEP)
    )
    row = AccountThrottle(account_id=account_id, action=action, at=now)
    session.add(row)
    await session.flush()
    return row


async def oldest_since(session, account_id: uuid.UUID, action: str, since: datetime) -> datetime | None:
    result = await session.exec(
        select(func.min(AccountThrottle.at)).where(
            AccountThrottle.account_id == account_id, AccountThrottle.action == action, AccountThrottle.at > since
        )
    )
    return result.one()
