"""What claims tells documents: the submission's status follows its claim, and each settled
claim becomes a statement (relevé de prestations) PDF issued to the contract holder: recorded
with the event, rendered and published afterwards (service_layer/rendering.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.tables import Document, Member, Submission
from documents.domain import submissions as states
from documents.service_layer import issuing, members
from documents.service_layer.context import Documents
from shared.contracts.claims import ClaimReceived, ClaimRejected, ClaimSettled

log = logging.getLogger(__name__)

# Order of a submission's states once submitted: a late event never moves it back.
_RANK = {states.SUBMITTED: 0, states.RECEIVED: 1, states.IN_REVIEW: 2, states.SETTLED: 3, states.REJECTED: 3}

REJECTION_LABELS = {
    "missing_document": "justificatif manquant",
    "not_covered": "soin non couvert par votre garantie",
    "ceiling_reached": "plafond annuel atteint",
    "renewal_period": "délai de renouvellement non écoulé",
    "duplicate": "demande déjà traitée",
    "not_covered_on_date": "bénéficiaire non couvert à la date des soins",
}


async def _move(session: AsyncSession, submission_id: uuid.UUID | None, status: str, message: str,
                claim_id: uuid.UUID) -> None:
    if submission_id is None:
        return
    submission = await session.get(Submission, submission_id, with_for_update=True)
    if submission is None:
        log.warning("claim event for an unknown submission", extra={"submission_id": str(submission_id)})
        return
    if submission.status not in _RANK or _RANK[status] < _RANK[submission.status]:
        return
    submission.status = status
    submission.status_message = message
    submission.claim_id = claim_id
    submission.updated_at = datetime.now(UTC)
    session.add(submission)


async def claim_received(session: AsyncSession, event: ClaimReceived) -> None:
    status = states.IN_REVIEW if event.status == "needs_review" else states.RECEIVED
    await _move(session, event.submission_id, status, states.message_for(status), event.claim_id)


async def claim_rejected(session: AsyncSession, event: ClaimRejected) -> None:
    await _move(session, event.submission_id, states.REJECTED, states.rejected_message(event.reason), event.claim_id)


def statement_context(docs: Documents, holder: Member, event: ClaimSettled) -> dict:
    lines = []
    for line in sorted(event.lines, key=lambda l: l.line_number):
        item = line.model_dump()
        item["rejection_label"] = REJECTION_LABELS.get(line.rejection_reason or "", line.rejection_reason)
        lines.append(item)
    totals = {
        "charged": sum(l.amount_charged_cents for l in event.lines),
        "secu_paid": sum(l.secu_paid_cents for l in event.lines),
        "participation": sum(l.participation_cents for l in event.lines),
        "mutuelle_paid": sum(l.mutuelle_paid_cents for l in event.lines),
        "out_of_pocket": sum(l.out_of_pocket_cents for l in event.lines),
        "to_member": sum(l.mutuelle_paid_cents for l in event.lines if l.payee == "member"),
    }
    if (totals["charged"], totals["mutuelle_paid"]) != (event.total_charged_cents, event.total_mutuelle_paid_cents):
        # The lines are the truth the member can check; the statement prints their sums.
        log.warning("claim totals differ from the sum of its lines", extra={"claim_id": str(event.claim_id)})
    settled_on = event.settled_at.date()
    return issuing.context_for(
        docs, holder,
        title=statement_title(event),
        reference=f"REL-{str(event.claim_id)[:8].upper()}",
        contract_number=event.contract_number,
        external_ref=event.external_ref,
        settled_on=settled_on,
        lines=lines,
        totals=totals,
        landscape=True,
    )


def statement_title(event: ClaimSettled) -> str:
    return f"Relevé de prestations du {event.settled_at:%d/%m/%Y}"


# documents_statement_per_claim's predicate, as SQL text: a bound parameter there is matched to
# the partial index by a custom plan but not by the generic one (from the sixth execution on).
_STATEMENT_INDEX_PREDICATE = text("kind = 'statement'")


async def claim_settled(session: AsyncSession, event: ClaimSettled) -> None:
    """Records the statement to issue (rendered later, service_layer/rendering.py): the
    consumer's part costs a row, not a PDF."""
    await _move(session, event.submission_id, states.SETTLED, states.message_for(states.SETTLED), event.claim_id)
    now = datetime.now(UTC)
    table = Document.__table__
    # Routed by the holder's choice as it is now (online when documents does not know them yet),
    # in the INSERT itself: the list shows it while the PDF is still to render.
    delivery = func.coalesce(
        select(case((Member.paperless, issuing.ONLINE), else_=issuing.POST))
        .where(Member.member_id == event.holder_member_id).scalar_subquery(),
        issuing.ONLINE,
    )
    # The same claim settled again (a replay) meets the one-statement-per-claim index: nothing.
    await session.execute(insert(table).values(
        id=uuid.uuid4(), member_id=event.holder_member_id, contract_number=event.contract_number, kind="statement",
        title=statement_title(event),
        file_name=f"releve-prestations-{event.settled_at:%Y-%m-%d}-{str(event.claim_id)[:8]}.pdf",
        media_type="application/pdf", scan_status="clean", period=event.settled_at.date(), claim_id=event.claim_id,
        delivery=delivery,
        render_status=issuing.PENDING, render_source=event.model_dump(mode="json"), render_attempts=0, created_at=now,
    ).on_conflict_do_nothing(index_elements=["claim_id"], index_where=_STATEMENT_INDEX_PREDICATE))


async def render_job(docs: Documents, session: AsyncSession, document: Document) -> issuing.RenderJob:
    """The pending statement `document` (row-locked by the caller) as a render job."""
    event = ClaimSettled.model_validate(document.render_source)
    holder = await members.get(session, event.holder_member_id)
    if holder is None:
        # Not enrolled here yet: address by the contract, routed online (the member space keeps it).
        holder = Member(member_id=event.holder_member_id, contract_number=event.contract_number, paperless=True)
    context = statement_context(docs, holder, event)

    async def finish(pdf) -> None:
        await issuing.store(docs, document, pdf.data, issuing.issued_key(document), pdf.pages)
        await issuing.deliver(session, document, holder)

    return issuing.RenderJob(document, lambda: docs.renderer.render("statement.html", context), finish)
