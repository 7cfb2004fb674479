"""The projection of members' accounts (table recipients), fed by identity's events in the
order identity published them (one partition per member): the address and names to write to,
whether the account is activated, and the communication preferences.

Every event that names the account's address (activation link, password messages, e-mail
changed…) refreshes it, so the projection follows the account even if an event was missed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Row, text
from sqlalchemy.dialects.postgresql import insert

from notifications.adapters.tables import Recipient
from notifications.domain.alerts import Reachable
from notifications.service_layer.emails import Notifications
from shared.contracts.identity import AccountActivated, CommunicationPreferencesChanged, MemberEnrolled
from shared.contracts.identity import MemberRegistered, ToTheAccountsAddress
from shared.platform.messaging import HandlerContext


async def _upsert(ctx: HandlerContext, member_id: uuid.UUID, **values) -> None:
    values = {k: v for k, v in values.items() if v is not None}
    values["updated_at"] = datetime.now(UTC)
    await ctx.session.execute(
        insert(Recipient)
        .values(member_id=member_id, **values)
        .on_conflict_do_update(index_elements=["member_id"], set_=values)
    )


async def on_member_enrolled(notifications: Notifications, ctx: HandlerContext, event: MemberEnrolled) -> None:
    await _upsert(ctx, event.member_id, first_name=event.first_name, last_name=event.last_name)


async def on_member_registered(notifications: Notifications, ctx: HandlerContext, event: MemberRegistered) -> None:
    await _upsert(ctx, event.member_id, account_id=event.account_id, paperless=event.paperless)


async def on_account_address(notifications: Notifications, ctx: HandlerContext, event: ToTheAccountsAddress) -> None:
    """The address (and names) an account's own e-mail was just sent to."""
    await _upsert(ctx, event.member_id, account_id=event.account_id, email=str(event.email),
                  first_name=event.first_name, last_name=event.last_name)


async def on_account_activated(notifications: Notifications, ctx: HandlerContext, event: AccountActivated) -> None:
    await _upsert(ctx, event.member_id, account_id=event.account_id, activated=True)


async def on_preferences_changed(
    notifications: Notifications, ctx: HandlerContext, event: CommunicationPreferencesChanged
) -> None:
    await _upsert(ctx, event.member_id, paperless=event.paperless, reimbursement_alerts=event.reimbursement_alerts)


_KNOWN = text(
    "SELECT member_id, email, first_name, last_name, activated, reimbursement_alerts FROM recipients"
    " WHERE member_id = ANY(CAST(:member_ids AS uuid[]))"
)


async def known(session, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """What is known of these members, as plain rows (`Recipient`'s columns by name): read for
    every alert, where an ORM entity per row cost more than the query."""
    rows = (await session.execute(_KNOWN, {"member_ids": member_ids})).all()
    return {r.member_id: r for r in rows}


def reachable(rows: dict[uuid.UUID, Row]) -> dict[uuid.UUID, Reachable]:
    return {k: Reachable(r.member_id, r.email, r.activated, r.reimbursement_alerts) for k, r in rows.items()}
