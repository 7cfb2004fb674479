"""The "something is waiting in your space" e-mails: a new reimbursement (claims.ClaimSettled),
a new document online (documents.DocumentIssued), an answer from the management centre
(documents.MessageAnswered).

None of them says what: no amount, no care, no practitioner, no content (health data stays
behind the log-in), only that something is there and the link to it. Each goes once per thing
and recipient (table alerts_sent), whatever the redeliveries or repeats of the event."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import text

from notifications.domain.alerts import account_alert_recipient, claim_alert_recipients, document_alert_recipient
from notifications.service_layer import recipients
from notifications.service_layer.emails import Notifications, _public_link, delivery_row, queue_emails
from shared.contracts.claims import ClaimSettled
from shared.contracts.documents import DocumentIssued, MessageAnswered
from shared.platform.messaging import HandlerContext

log = logging.getLogger(__name__)

_FIRST_TIME = text(
    "INSERT INTO alerts_sent (kind, subject, member_id)"
    " SELECT :kind, :subject, m FROM unnest(CAST(:member_ids AS uuid[])) AS m"
    " ON CONFLICT DO NOTHING RETURNING member_id"
)


async def _first_time(ctx: HandlerContext, kind: str, subject: str, member_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `member_ids` not alerted yet of this thing, now recorded as alerted: one statement."""
    if not member_ids:
        return set()
    result = await ctx.session.execute(_FIRST_TIME, {"kind": kind, "subject": subject, "member_ids": member_ids})
    return {row[0] for row in result}


async def _alert(notifications: Notifications, ctx: HandlerContext, kind: str, subject: str,
                 member_ids: list[uuid.UUID], rows, path: str) -> int:
    fresh = await _first_time(ctx, kind, subject, member_ids)
    deliveries = [
        delivery_row(
            notifications,
            ctx,
            member_id=member_id,
            kind=kind,
            recipient=rows[member_id].email,
            per_member=True,
            first_name=rows[member_id].first_name or "",
            last_name=rows[member_id].last_name or "",
            link=_public_link(notifications, path),
        )
        for member_id in member_ids
        if member_id in fresh
    ]
    await queue_emails(ctx, deliveries)
    return len(deliveries)


async def on_claim_settled(notifications: Notifications, ctx: HandlerContext, event: ClaimSettled) -> None:
    rows = await recipients.known(ctx.session, [event.holder_member_id, *event.beneficiary_member_ids])
    chosen = claim_alert_recipients(event.holder_member_id, list(event.beneficiary_member_ids), recipients.reachable(rows))
    queued = await _alert(notifications, ctx, "reimbursement_available", str(event.claim_id), chosen, rows, "/remboursements")
    log.info("reimbursement alerts", extra={"claim_id": str(event.claim_id), "queued": queued})


async def on_document_issued(notifications: Notifications, ctx: HandlerContext, event: DocumentIssued) -> None:
    if event.delivery != "online":
        return  # on paper: the post is the alert
    rows = await recipients.known(ctx.session, [event.member_id])
    chosen = document_alert_recipient(event.member_id, event.document_type, recipients.reachable(rows))
    if chosen is not None:
        await _alert(notifications, ctx, "document_available", str(event.document_id), [chosen], rows, "/documents")


async def on_message_answered(notifications: Notifications, ctx: HandlerContext, event: MessageAnswered) -> None:
    rows = await recipients.known(ctx.session, [event.member_id])
    chosen = account_alert_recipient(event.member_id, recipients.reachable(rows))
    if chosen is not None:
        # One answer, one e-mail: a thread answered again later mails again.
        subject = f"{event.thread_id}@{event.answered_at.isoformat()}"
        await _alert(notifications, ctx, "message_answered", subject, [chosen], rows, "/messages")
