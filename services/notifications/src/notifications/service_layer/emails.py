"""notifications' use cases: turn events into e-mails to send, and send them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlmodel import select

from notifications.adapters.smtp import SmtpSender
from notifications.adapters.tables import Delivery
from notifications.adapters.templates import Templates
from notifications.config import NotificationsSettings
from notifications.domain.dates import french_datetime
from shared.contracts.identity import AccountAlreadyExists, EmailChanged, EmailChangeRequested
from shared.contracts.identity import ActivationLinkIssued, PasswordChanged, PasswordResetRequested, ToTheAccountsAddress
from shared.contracts.notifications import EmailFailed, EmailSent
from shared.platform.context import correlation_id_var
from shared.platform.db import Database
from shared.platform.messaging import HandlerContext
from shared.platform.outbox import record_event

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    settings: NotificationsSettings
    db: Database
    templates: Templates
    smtp: SmtpSender
    wake_sender: asyncio.Event = field(default_factory=asyncio.Event)

    def message_id(self, source_event_id: uuid.UUID, kind: str, member_id: uuid.UUID | None = None) -> str:
        """Stable across retries; with `member_id` when one event mails several members."""
        suffix = f".{member_id}" if member_id is not None else ""
        return f"<{kind}.{source_event_id}{suffix}@{self.settings.message_id_domain}>"


async def queue_email(notifications: Notifications, ctx: HandlerContext, *, member_id: uuid.UUID,
                      kind: str, recipient: str, per_member: bool = False, **context) -> None:
    rendered = notifications.templates.render(kind, **context)
    now = datetime.now(UTC)
    ctx.session.add(
        Delivery(
            id=uuid.uuid4(),
            source_event_id=ctx.envelope.event_id,
            member_id=member_id,
            kind=kind,
            recipient=recipient,
            subject=rendered.subject,
            message_id=notifications.message_id(ctx.envelope.event_id, kind, member_id if per_member else None),
            body_text=rendered.text,
            body_html=rendered.html,
            next_attempt_at=now,
            created_at=now,
            correlation_id=ctx.envelope.correlation_id,
        )
    )


def _public_link(notifications: Notifications, path: str) -> str:
    return f"{notifications.settings.public_base_url.rstrip('/')}{path}"


def mask_email(address: str) -> str:
    """camille.martin@example.net → c***n@example.net: enough for the owner to recognise it."""
    local, _, domain = address.rpartition("@")
    if len(local) <= 2:
        return f"{local[:1]}***@{domain}"
    return f"{local[0]}***{local[-1]}@{domain}"


async def _to_the_account(
    notifications: Notifications, ctx: HandlerContext, event: ToTheAccountsAddress, kind: str, **context
) -> None:
    """An e-mail to the account's own address, greeting the member by name."""
    await queue_email(
        notifications,
        ctx,
        member_id=event.member_id,
        kind=kind,
        recipient=str(event.email),
        first_name=event.first_name,
        last_name=event.last_name,
        **context,
    )


async def on_activation_link_issued(notifications: Notifications, ctx: HandlerContext, event: ActivationLinkIssued) -> None:
    await _to_the_account(
        notifications,
        ctx,
        event,
        "activation",
        link=_public_link(notifications, f"/activation?token={event.token.get_secret_value()}"),
        expires_at_fr=french_datetime(event.expires_at),
    )


async def on_password_reset_requested(
    notifications: Notifications, ctx: HandlerContext, event: PasswordResetRequested
) -> None:
    await _to_the_account(
        notifications,
        ctx,
        event,
        "password_reset",
        link=_public_link(notifications, f"/mot-de-passe/reinitialisation?token={event.token.get_secret_value()}"),
        expires_at_fr=french_datetime(event.expires_at),
    )


async def on_password_changed(notifications: Notifications, ctx: HandlerContext, event: PasswordChanged) -> None:
    """A security alert: sent whatever the member's communication preferences."""
    await _to_the_account(
        notifications,
        ctx,
        event,
        "password_changed",
        by_reset=event.method == "reset",
        changed_at_fr=french_datetime(event.changed_at),
        forgotten_link=_public_link(notifications, "/mot-de-passe/oubli"),
    )


async def on_account_already_exists(notifications: Notifications, ctx: HandlerContext, event: AccountAlreadyExists) -> None:
    """Someone registered with the member's data while the account exists: told to the
    account's own address, with the way back in (password reset)."""
    await _to_the_account(
        notifications, ctx, event, "account_exists", reset_link=_public_link(notifications, "/mot-de-passe/oubli")
    )


async def on_email_change_requested(notifications: Notifications, ctx: HandlerContext, event: EmailChangeRequested) -> None:
    """Two e-mails: the confirmation link to the new address, and an alert without it to the
    current one, so a change the member did not ask for does not go unseen."""
    link = _public_link(notifications, f"/email/confirmation?token={event.token.get_secret_value()}")
    await queue_email(
        notifications,
        ctx,
        member_id=event.member_id,
        kind="email_change_confirmation",
        recipient=str(event.new_email),
        first_name=event.first_name,
        last_name=event.last_name,
        link=link,
        expires_at_fr=french_datetime(event.expires_at),
    )
    await queue_email(
        notifications,
        ctx,
        member_id=event.member_id,
        kind="email_change_alert",
        recipient=str(event.previous_email),
        first_name=event.first_name,
        last_name=event.last_name,
        new_email_masked=mask_email(str(event.new_email)),
        requested_at_fr=french_datetime(event.requested_at),
        reset_link=_public_link(notifications, "/mot-de-passe/oubli"),
    )


async def on_email_changed(notifications: Notifications, ctx: HandlerContext, event: EmailChanged) -> None:
    await _to_the_account(
        notifications, ctx, event, "email_changed", changed_at_fr=french_datetime(event.changed_at)
    )


_CLAIM_DUE = text(
    "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


async def send_due(notifications: Notifications, limit: int = 20) -> int:
    """Send due e-mails, each in its own transaction that holds the row while it is sent.

    A crash after the SMTP server took the message but before the commit sends it once more,
    with the same Message-ID: at most one duplicate, visible as such.
    """
    sent = 0
    for _ in range(limit):
        async with notifications.db.transaction() as session:
            row = (await session.execute(_CLAIM_DUE, {"limit": 1})).first()
            if row is None:
                break
            delivery = await session.get(Delivery, row.id)
            token = correlation_id_var.set(delivery.correlation_id)
            try:
                await _send_one(notifications, session, delivery)
            finally:
                correlation_id_var.reset(token)
            sent += 1
    return sent


async def _send_one(notifications: Notifications, session, delivery: Delivery) -> None:
    now = datetime.now(UTC)
    message = notifications.smtp.build(
        recipient=delivery.recipient,
        subject=delivery.subject,
        text=delivery.body_text or "",
        html=delivery.body_html or "",
        message_id=delivery.message_id,
    )
    delivery.attempts += 1
    try:
        await notifications.smtp.send(message)
    except Exception as exc:
        delivery.last_error = type(exc).__name__
        log.warning("e-mail not sent", extra={"delivery_id": str(delivery.id), "kind": delivery.kind,
                                              "attempt": delivery.attempts, "error_type": type(exc).__name__})
        if delivery.attempts >= notifications.settings.send_max_attempts:
            delivery.status = "failed"
            delivery.body_text = delivery.body_html = None
            await record_event(
                session,
                EmailFailed(delivery_id=delivery.id, member_id=delivery.member_id, kind=delivery.kind,
                            attempts=delivery.attempts, error_type=type(exc).__name__, failed_at=now),
                key=str(delivery.member_id),
                producer=notifications.settings.service_name,
            )
        else:
            delivery.next_attempt_at = now + timedelta(seconds=min(2 ** delivery.attempts, 300))
        session.add(delivery)
        return
    delivery.status = "sent"
    delivery.sent_at = now
    delivery.last_error = None
    delivery.body_text = delivery.body_html = None
    session.add(delivery)
    await record_event(
        session,
        EmailSent(delivery_id=delivery.id, member_id=delivery.member_id, kind=delivery.kind, sent_at=now),
        key=str(delivery.member_id),
        producer=notifications.settings.service_name,
    )
    log.info("e-mail sent", extra={"delivery_id": str(delivery.id), "kind": delivery.kind})


async def sender_loop(notifications: Notifications) -> None:
    backoff = 0.5
    while True:
        try:
            sent = await send_due(notifications)
            backoff = 0.5
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sender loop failed, will retry", extra={"error_type": type(exc).__name__})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)
            continue
        if sent:
            continue
        notifications.wake_sender.clear()
        try:
            await asyncio.wait_for(notifications.wake_sender.wait(), notifications.settings.send_poll_seconds)
        except TimeoutError:
            pass


async def deliveries_of(notifications: Notifications, member_id: uuid.UUID, limit: int) -> list[Delivery]:
    async with notifications.db.transaction() as session:
        result = await session.exec(
            select(Delivery).where(Delivery.member_id == member_id).order_by(Delivery.created_at.desc()).limit(limit)
        )
        return list(result)
