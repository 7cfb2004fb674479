"""notifications' use cases: turn events into e-mails to send, and send them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from sqlalchemy import func
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
from shared.platform.metrics import EMAILS_FAILED, EMAILS_RETRIED, EMAILS_SENT
from shared.platform.outbox import record_event
from shared.platform.telemetry import extract_trace_context, inject_trace_headers, tracer

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    settings: NotificationsSettings
    db: Database
    templates: Templates
    smtp: SmtpSender
    wake_sender: asyncio.Event = field(default_factory=asyncio.Event)

    def message_id(self, source_event_id: uuid.UUID, kind: str) -> str:
        return f"<{kind}.{source_event_id}@{self.settings.message_id_domain}>"


async def queue_email(notifications: Notifications, ctx: HandlerContext, *, member_id: uuid.UUID,
                      kind: str, recipient: str, **context) -> None:
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
            message_id=notifications.message_id(ctx.envelope.event_id, kind),
            body_text=rendered.text,
            body_html=rendered.html,
            next_attempt_at=now,
            created_at=now,
            correlation_id=ctx.envelope.correlation_id,
            # The consumer span's context: the SMTP send, later, becomes its child.
            trace_headers=inject_trace_headers({}),
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


_CLAIM_DUE = (
    select(Delivery)
    .where(Delivery.status == "pending", Delivery.next_attempt_at <= func.now())
    .order_by(Delivery.next_attempt_at)
    .with_for_update(skip_locked=True)
)

_tracer = tracer("notifications.smtp")


async def send_due(notifications: Notifications, limit: int = 20) -> int:
    """Send due e-mails: up to `limit` rows claimed in one transaction that holds them while
    they are sent over one SMTP connection, then stamped together.

    Each row was recorded (with its stable Message-ID) before any send; a crash after the SMTP
    server took a message but before the commit sends it once more, with the same Message-ID:
    at most one duplicate per message, visible as such.
    """
    async with notifications.db.transaction() as session:
        deliveries = list((await session.exec(_CLAIM_DUE.limit(limit))).all())
        if not deliveries:
            return 0
        messages = [
            notifications.smtp.build(
                recipient=d.recipient, subject=d.subject, text=d.body_text or "", html=d.body_html or "",
                message_id=d.message_id,
            )
            for d in deliveries
        ]
        spans = [
            _tracer.start_span(
                "smtp send",
                context=extract_trace_context(d.trace_headers or {}),
                kind=trace.SpanKind.CLIENT,
                attributes={"email.kind": d.kind},
            )
            for d in deliveries
        ]
        results = await notifications.smtp.send_many(messages)
        now = datetime.now(UTC)
        for delivery, span, error in zip(deliveries, spans, results, strict=True):
            token = correlation_id_var.set(delivery.correlation_id)
            try:
                await _record_outcome(notifications, session, delivery, error, now)
            finally:
                correlation_id_var.reset(token)
            if error is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
            span.end()
    return len(deliveries)


async def _record_outcome(notifications: Notifications, session, delivery: Delivery, error: Exception | None,
                          now: datetime) -> None:
    delivery.attempts += 1
    if error is not None:
        delivery.last_error = type(error).__name__
        log.warning("e-mail not sent", extra={"delivery_id": str(delivery.id), "kind": delivery.kind,
                                              "attempt": delivery.attempts, "error_type": type(error).__name__})
        if delivery.attempts >= notifications.settings.send_max_attempts:
            EMAILS_FAILED.labels(delivery.kind).inc()
            delivery.status = "failed"
            delivery.body_text = delivery.body_html = None
            await record_event(
                session,
                EmailFailed(delivery_id=delivery.id, member_id=delivery.member_id, kind=delivery.kind,
                            attempts=delivery.attempts, error_type=type(error).__name__, failed_at=now),
                key=str(delivery.member_id),
                producer=notifications.settings.service_name,
            )
        else:
            EMAILS_RETRIED.labels(delivery.kind).inc()
            delivery.next_attempt_at = now + timedelta(seconds=min(2 ** delivery.attempts, 300))
        session.add(delivery)
        return
    EMAILS_SENT.labels(delivery.kind).inc()
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
