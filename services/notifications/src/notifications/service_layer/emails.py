"""notifications' use cases: turn events into e-mails to send, and send them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

from opentelemetry import trace
from sqlalchemy import JSON, insert, text
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
from shared.platform.outbox import Recorded, record_events
from shared.platform.telemetry import extract_trace_context, inject_trace_headers, tracer

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    settings: NotificationsSettings
    db: Database
    templates: Templates
    smtp: SmtpSender
    wake_sender: asyncio.Event = field(default_factory=asyncio.Event)
    batch_sent: asyncio.Event = field(default_factory=asyncio.Event)  # room in the queue (room_to_queue)
    # Due e-mails at most, as far as this process knows: the last count plus what it queued since
    # (room_to_queue counts again only once this could reach the limit).
    due_at_most: int = 0

    def message_id(self, source_event_id: uuid.UUID, kind: str, member_id: uuid.UUID | None = None) -> str:
        """Stable across retries; with `member_id` when one event mails several members."""
        suffix = f".{member_id}" if member_id is not None else ""
        return f"<{kind}.{source_event_id}{suffix}@{self.settings.message_id_domain}>"


def delivery_row(notifications: Notifications, ctx: HandlerContext, *, member_id: uuid.UUID, kind: str, recipient: str,
                 per_member: bool = False, **context) -> dict:
    """The `deliveries` row of one e-mail, rendered, due now."""
    rendered = notifications.templates.render(kind, **context)
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "source_event_id": ctx.envelope.event_id,
        "member_id": member_id,
        "kind": kind,
        "recipient": recipient,
        "subject": rendered.subject,
        "message_id": notifications.message_id(ctx.envelope.event_id, kind, member_id if per_member else None),
        "body_text": rendered.text,
        "body_html": rendered.html,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "correlation_id": ctx.envelope.correlation_id,
        # The consumer span's context: the SMTP send, later, becomes its child.
        "trace_headers": inject_trace_headers({}),
    }


_DELIVERIES = Delivery.__table__
_QUEUED = "notifications.queued_deliveries"  # key in the transaction's session.info


async def queue_emails(ctx: HandlerContext, rows: list[dict]) -> None:
    """Record e-mails to send in the event's transaction. Kept with the transaction's session
    and written by `insert_queued` once its handlers have run: one INSERT for the e-mails of
    a whole batch of events (one per event, with the ORM's bookkeeping per object, was most of
    an alert's CPU). A rolled back transaction drops its session, and them with it."""
    ctx.session.info.setdefault(_QUEUED, []).extend(rows)


async def insert_queued(notifications: Notifications, session) -> None:
    """The consumer's `before_commit`: the e-mails its handlers queued, inside their transaction."""
    rows = session.info.pop(_QUEUED, None)
    if rows:
        await session.execute(insert(_DELIVERIES), rows)
        notifications.due_at_most += len(rows)


async def queue_email(notifications: Notifications, ctx: HandlerContext, *, member_id: uuid.UUID,
                      kind: str, recipient: str, per_member: bool = False, **context) -> None:
    await queue_emails(ctx, [delivery_row(notifications, ctx, member_id=member_id, kind=kind, recipient=recipient,
                                          per_member=per_member, **context)])


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


# Only what a send needs, as plain rows (no ORM identity map or change tracking per e-mail).
_CLAIM_DUE = text(
    "SELECT id, member_id, kind, recipient, subject, message_id, body_text, body_html, attempts, correlation_id,"
    " trace_headers FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED"
).columns(trace_headers=JSON)

_STAMP_SENT = text(
    "UPDATE deliveries SET status = 'sent', sent_at = :now, attempts = attempts + 1, last_error = NULL,"
    " body_text = NULL, body_html = NULL WHERE id = ANY(CAST(:ids AS uuid[]))"
)

# A failed try: counted, the error's type kept, due again later; or, at the last try, failed for
# good (its body, which may hold a secret link, cleared).
_STAMP_FAILED = text(
    "UPDATE deliveries AS d SET attempts = d.attempts + 1, last_error = f.error,"
    " status = CASE WHEN f.give_up THEN 'failed' ELSE 'pending' END,"
    " next_attempt_at = coalesce(f.next_at, d.next_attempt_at),"
    " body_text = CASE WHEN f.give_up THEN NULL ELSE d.body_text END,"
    " body_html = CASE WHEN f.give_up THEN NULL ELSE d.body_html END"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:errors AS text[]), CAST(:next_ats AS timestamptz[]),"
    " CAST(:give_ups AS boolean[])) AS f(id, error, next_at, give_up)"
    " WHERE d.id = f.id"
)

_DUE_COUNT = text(
    "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
    " LIMIT :cap) AS due"
)

_tracer = tracer("notifications.smtp")


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failed try: 2 s, 4 s, 8 s… up to 5 minutes."""
    return timedelta(seconds=min(2 ** attempts, 300))


async def send_due(notifications: Notifications, limit: int | None = None) -> int:
    """Send due e-mails: up to `limit` rows claimed in one transaction that holds them while
    they are sent over one SMTP session, then stamped together (one UPDATE for the sent ones,
    one for the failed ones, one outbox INSERT for their EmailSent / EmailFailed events).

    Each row was recorded (with its stable Message-ID) before any send; a crash after the SMTP
    server took a message but before the commit sends it once more, with the same Message-ID:
    at most one duplicate per message, visible as such. Several of these run at once
    (`sender_loop`); SKIP LOCKED gives each its own rows.
    """
    limit = limit or notifications.settings.send_batch_size
    async with notifications.db.transaction() as session:
        deliveries = (await session.execute(_CLAIM_DUE, {"limit": limit})).all()
        if not deliveries:
            return 0
        date = formatdate(localtime=False)
        spans = []
        results: list[Exception | None] = []
        messages, composed = [], []
        for index, d in enumerate(deliveries):
            # The consumer span's context was kept with the row: the send becomes its child.
            spans.append(_tracer.start_span("smtp send", context=extract_trace_context(d.trace_headers or {}),
                                            kind=trace.SpanKind.CLIENT, attributes={"email.kind": d.kind}))
            try:
                messages.append(notifications.smtp.compose(recipient=d.recipient, subject=d.subject, text=d.body_text or "",
                                                           html=d.body_html or "", message_id=d.message_id, date=date))
                composed.append(index)
                results.append(None)
            except ValueError as exc:  # this row only (a line break in a header): a failed try, not a stuck queue
                results.append(exc)
        for index, error in zip(composed, await notifications.smtp.send_many(messages), strict=True):
            results[index] = error
        now = datetime.now(UTC)
        await _record_outcomes(notifications, session, deliveries, spans, results, now)
    return len(deliveries)


async def _record_outcomes(notifications: Notifications, session, deliveries, spans, results, now: datetime) -> None:
    settings = notifications.settings
    sent_ids: list[uuid.UUID] = []
    failed = {"ids": [], "errors": [], "next_ats": [], "give_ups": []}
    events: list[Recorded] = []
    for d, span, error in zip(deliveries, spans, results, strict=True):
        attempts = d.attempts + 1
        context = trace.set_span_in_context(span)  # EmailSent/EmailFailed: children of the send
        token = correlation_id_var.set(d.correlation_id)
        try:
            if error is None:
                EMAILS_SENT.labels(d.kind).inc()
                sent_ids.append(d.id)
                events.append(Recorded(EmailSent(delivery_id=d.id, member_id=d.member_id, kind=d.kind, sent_at=now),
                                       key=str(d.member_id), correlation_id=d.correlation_id, context=context))
                log.info("e-mail sent", extra={"delivery_id": str(d.id), "kind": d.kind})
                continue
            error_type = type(error).__name__  # the type only: a relay's answer may quote the address
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))
            log.warning("e-mail not sent", extra={"delivery_id": str(d.id), "kind": d.kind, "attempt": attempts,
                                                  "error_type": error_type})
            give_up = attempts >= settings.send_max_attempts
            failed["ids"].append(d.id)
            failed["errors"].append(error_type)
            failed["give_ups"].append(give_up)
            failed["next_ats"].append(None if give_up else now + retry_delay(attempts))
            if give_up:
                EMAILS_FAILED.labels(d.kind).inc()
                events.append(Recorded(EmailFailed(delivery_id=d.id, member_id=d.member_id, kind=d.kind, attempts=attempts,
                                                   error_type=error_type, failed_at=now),
                                       key=str(d.member_id), correlation_id=d.correlation_id, context=context))
            else:
                EMAILS_RETRIED.labels(d.kind).inc()
        finally:
            correlation_id_var.reset(token)
    if sent_ids:
        await session.execute(_STAMP_SENT, {"now": now, "ids": sent_ids})
    if failed["ids"]:
        await session.execute(_STAMP_FAILED, failed)
    await record_events(session, events, producer=settings.service_name)
    for span in spans:
        span.end()


async def room_to_queue(notifications: Notifications) -> None:
    """The consumer's `before_batch`: returns once fewer than `send_queue_limit` e-mails are due
    and unsent (or after `send_queue_max_hold_seconds`, so the group's session never times out:
    the queue is a target, not a guarantee). Woken by each sent batch, with a short poll.
    The count is a query on the consumer's path: it is made only once what this process queued
    since the last one could have filled the queue (a lone event costs none); e-mails queued by
    other replicas meanwhile are seen at the next count."""
    settings = notifications.settings
    if settings.send_queue_limit <= 0 or notifications.due_at_most < settings.send_queue_limit:
        return
    deadline = asyncio.get_running_loop().time() + settings.send_queue_max_hold_seconds
    while True:
        async with notifications.db.transaction() as session:
            due = (await session.execute(_DUE_COUNT, {"cap": settings.send_queue_limit})).scalar_one()
        notifications.due_at_most = due
        if due < settings.send_queue_limit or asyncio.get_running_loop().time() >= deadline:
            return
        notifications.batch_sent.clear()
        try:
            await asyncio.wait_for(notifications.batch_sent.wait(), 0.2)
        except TimeoutError:
            pass


async def sender_loop(notifications: Notifications) -> None:
    """Up to `send_concurrency` senders, each sending one batch at a time over its own SMTP
    session: while one waits on the relay, another claims or stamps its batch. Only the first
    answers the consumers' wake-ups; the others join while batches come back full (a backlog),
    so a lone e-mail costs one claim query, not one per sender."""
    settings = notifications.settings
    backlog = asyncio.Event()
    helpers = [_one_sender(notifications, backlog, wake=backlog, poll=None) for _ in range(max(1, settings.send_concurrency) - 1)]
    await asyncio.gather(_one_sender(notifications, backlog, wake=notifications.wake_sender, poll=settings.send_poll_seconds),
                         *helpers)


async def _one_sender(notifications: Notifications, backlog: asyncio.Event, *, wake: asyncio.Event,
                      poll: float | None) -> None:
    """`poll`: also look every so many seconds (retries falling due); None: only when woken."""
    limit = notifications.settings.send_batch_size
    backoff = 0.5
    while True:
        try:
            sent = await send_due(notifications, limit)
            backoff = 0.5
            if sent:
                notifications.batch_sent.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sender loop failed, will retry", extra={"error_type": type(exc).__name__})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)
            continue
        if sent >= limit:
            backlog.set()  # more is due: the other senders join in
            continue
        backlog.clear()
        if sent:
            continue
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), poll)
        except TimeoutError:
            pass


async def deliveries_of(notifications: Notifications, member_id: uuid.UUID, limit: int) -> list[Delivery]:
    async with notifications.db.transaction() as session:
        result = await session.exec(
            select(Delivery).where(Delivery.member_id == member_id).order_by(Delivery.created_at.desc()).limit(limit)
        )
        return list(result)
