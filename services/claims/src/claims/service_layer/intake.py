"""What claims learns from other services: the members (MemberRegistered, MemberEnrolled) and
the paper claims (documents' InvoiceSubmitted)."""

from __future__ import annotations

import logging
import uuid
from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from claims.adapters import pg
from claims.adapters.tables import Member
from claims.service_layer import settlement
from claims.service_layer.settlement import ClaimDraft
from shared.contracts.documents import InvoiceSubmitted
from shared.contracts.identity import MemberEnrolled, MemberRegistered

log = logging.getLogger(__name__)

# Members enrolled before plans were in the registry (no plan_code): the default demo plan.
DEFAULT_PLAN = "ESSENTIEL"
ROLES = {"holder", "spouse", "child"}


async def record_member(session: AsyncSession, event: MemberRegistered) -> None:
    await session.merge(
        Member(member_id=event.member_id, account_id=event.account_id, paperless=event.paperless,
               registered_at=event.registered_at)
    )


async def record_enrolment(session: AsyncSession, event: MemberEnrolled, today: date | None = None) -> None:
    """Upsert the beneficiary. Fields an older producer leaves out (plan, role, coverage) keep
    what was known: an event without them never erases them."""
    role = event.role if event.role in ROLES else None
    if event.role and role is None:
        log.warning("unknown role on MemberEnrolled, ignored", extra={"role": event.role})
    conn = await pg.connection(session)
    start_default = date((today or date.today()).year, 1, 1)
    await conn.execute(
        "INSERT INTO beneficiaries (member_id, membership_number, contract_number, last_name, first_name, birth_date,"
        " plan_code, role, coverage_start, coverage_end, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::text, $11::text), $8::text, coalesce($9::date, $12::date), $10::date, now())"
        " ON CONFLICT (member_id) DO UPDATE SET membership_number = EXCLUDED.membership_number,"
        " contract_number = EXCLUDED.contract_number, last_name = EXCLUDED.last_name,"
        " first_name = EXCLUDED.first_name, birth_date = EXCLUDED.birth_date,"
        " plan_code = coalesce($7::text, beneficiaries.plan_code), role = coalesce($8::text, beneficiaries.role),"
        " coverage_start = coalesce($9::date, beneficiaries.coverage_start),"
        " coverage_end = CASE WHEN $9::date IS NOT NULL OR $10::date IS NOT NULL THEN $10::date ELSE beneficiaries.coverage_end END,"
        " updated_at = now()",
        event.member_id, event.membership_number, event.contract_number, event.last_name, event.first_name,
        event.birth_date, event.plan_code, role, event.coverage_start, event.coverage_end, DEFAULT_PLAN, start_default,
    )


async def open_paper_claim(session: AsyncSession, event: InvoiceSubmitted) -> None:
    """An uploaded invoice, scanned clean: a claim waiting for an agent (needs_review)."""
    conn = await pg.connection(session)
    ben = await settlement.beneficiary(conn, event.beneficiary_member_id)
    if ben is None:
        # The enrolment has not reached us yet (another topic): retried, then parked.
        raise LookupError("beneficiary not enrolled yet")
    now = settlement.now_utc()
    holder = settlement.Beneficiary(ben.holder_member_id, "", ben.contract_number, "", "", ben.plan_code,
                                    ben.coverage, ben.holder_member_id)
    draft = ClaimDraft(claim_id=uuid.uuid4(), source="upload", external_ref=str(event.submission_id),
                       holder=holder, beneficiary=ben, submission_id=event.submission_id)
    inserted = await conn.fetchval(
        "INSERT INTO claims (id, source, external_ref, submission_id, contract_number, holder_member_id,"
        " beneficiary_member_id, status, care_type, care_date, amount_declared_cents, comment, document_ids, received_at)"
        " VALUES ($1, 'upload', $2, $3, $4, $5, $6, 'needs_review', $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (source, external_ref) DO NOTHING RETURNING id",
        draft.claim_id, draft.external_ref, event.submission_id, ben.contract_number, ben.holder_member_id,
        ben.member_id, event.care_type, event.care_date, event.amount_charged_cents, event.comment,
        list(event.document_ids), now,
    )
    if inserted is None:
        return  # the same submission again
    await conn.executemany(
        "INSERT INTO claim_status_history (claim_id, status, reason_code, actor, at) VALUES ($1, $2, NULL, 'documents', $3)",
        [(draft.claim_id, "received", now), (draft.claim_id, "needs_review", now)],
    )
    await pg.publish(conn, [(settlement.received_event(draft, "needs_review", now), str(ben.holder_member_id))])
