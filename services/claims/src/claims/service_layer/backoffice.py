"""The management centre's work: the paper claims waiting for review, valuing one from the
lines read off the invoice (the same rules as the Sécu feed), rejecting one with a reason, and
the members' reports. Every agent action is written to agent_audit (who, when, what)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from claims.adapters import pg
from claims.domain.plans import PlanCatalog
from claims.domain.valuation import REASONS, CareLine
from claims.service_layer import errors, settlement
from claims.service_layer.reimbursements import line_out, _LINE_FIELDS
from claims.service_layer.settlement import ClaimDraft, LineInput
from shared.contracts.claims import ClaimRejected
from shared.platform.db import Database

REJECTION_CODES = ("missing_document", "not_covered", "ceiling_reached", "renewal_period", "duplicate")
STATUSES = ("received", "needs_review", "settled", "partially_rejected", "rejected")


async def audit(conn: asyncpg.Connection, agent_id: uuid.UUID, action: str, claim_id: uuid.UUID | None, **detail: Any) -> None:
    await conn.execute(
        "INSERT INTO agent_audit (agent_id, action, claim_id, detail, at) VALUES ($1, $2, $3, $4::jsonb, now())",
        agent_id, action, claim_id, pg.jsonb(detail),
    )


def _claim_out(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"], "source": r["source"], "reference": r["external_ref"], "submission_id": r["submission_id"],
        "status": r["status"], "contract_number": r["contract_number"], "holder_member_id": r["holder_member_id"],
        "beneficiary": {"member_id": r["beneficiary_member_id"], "first_name": r["first_name"],
                        "last_name": r["last_name"], "membership_number": r["membership_number"],
                        "plan_code": r["plan_code"]},
        "care_type": r["care_type"], "care_date": r["care_date"], "amount_declared_cents": r["amount_declared_cents"],
        "comment": r["comment"], "document_ids": list(r["document_ids"] or []),
        "rejection_reason": r["rejection_reason"], "received_at": r["received_at"], "settled_at": r["settled_at"],
    }


_CLAIM = (
    "SELECT c.*, b.first_name, b.last_name, b.membership_number, b.plan_code FROM claims c"
    " JOIN beneficiaries b ON b.member_id = c.beneficiary_member_id"
)


async def list_claims(db: Database, agent_id: uuid.UUID, status: str, cursor: str | None, limit: int) -> dict[str, Any]:
    if status not in STATUSES:
        raise errors.invalid("status", "unknown_status", f"Statut inconnu (attendu : {', '.join(STATUSES)}).")
    after: tuple[datetime, uuid.UUID] | None = None
    if cursor:
        try:
            at, claim_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
            after = (datetime.fromisoformat(at), uuid.UUID(claim_id))
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid("cursor", "invalid_cursor", "Ce curseur de pagination n'est pas valide.") from None
    async with db.transaction() as session:
        conn = await pg.connection(session)
        rows = await conn.fetch(
            _CLAIM + " WHERE c.status = $1 AND ($2::timestamptz IS NULL OR (c.received_at, c.id) > ($2, $3::uuid))"
            " ORDER BY c.received_at, c.id LIMIT $4",
            status, after[0] if after else None, after[1] if after else None, limit + 1,
        )
        await audit(conn, agent_id, "list_claims", None, status=status)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last['received_at'].isoformat()}|{last['id']}".encode()).decode().rstrip("=")
    return {"items": [_claim_out(r) for r in page], "next_cursor": next_cursor}


async def _claim_detail(conn: asyncpg.Connection, claim_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(_CLAIM + " WHERE c.id = $1", claim_id)
    if row is None:
        raise errors.claim_not_found()
    out = _claim_out(row)
    lines = await conn.fetch(
        f"SELECT {_LINE_FIELDS} FROM claim_lines l JOIN beneficiaries b ON b.member_id = l.beneficiary_member_id"
        " WHERE l.claim_id = $1 ORDER BY l.line_number", claim_id,
    )
    history = await conn.fetch("SELECT status, reason_code, actor, at FROM claim_status_history WHERE claim_id = $1 ORDER BY id", claim_id)
    out["lines"] = [line_out(r) for r in lines]
    out["history"] = [dict(h) for h in history]
    return out


async def get_claim(db: Database, agent_id: uuid.UUID, claim_id: uuid.UUID) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        out = await _claim_detail(conn, claim_id)
        await audit(conn, agent_id, "view_claim", claim_id)
    return out


@dataclass(frozen=True)
class InvoiceLine:
    """A line an agent read off the invoice."""

    act_code: str
    act_label: str
    care_date: date | None
    quantity: int
    amount_charged_cents: int
    secu_base_cents: int
    secu_rate_pct: int
    secu_paid_cents: int
    participation_cents: int
    practitioner_id: str | None
    practitioner_sector: int | None
    optam: bool | None
    payee: str


async def _reviewable(conn: asyncpg.Connection, claim_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1 FOR UPDATE", claim_id)
    if row is None:
        raise errors.claim_not_found()
    if row["status"] != "needs_review":
        raise errors.claim_not_reviewable(row["status"])
    return row


async def value_claim(
    db: Database, catalog: PlanCatalog, agent_id: uuid.UUID, claim_id: uuid.UUID, lines: list[InvoiceLine]
) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        claim = await _reviewable(conn, claim_id)
        ben = await settlement.beneficiary(conn, claim["beneficiary_member_id"])
        assert ben is not None  # a claim is only opened for an enrolled beneficiary
        holder = settlement.Beneficiary(claim["holder_member_id"], "", claim["contract_number"], "", "", ben.plan_code,
                                        ben.coverage, claim["holder_member_id"])
        draft = ClaimDraft(claim_id, "upload", claim["external_ref"], holder, ben, claim["submission_id"])
        for n, item in enumerate(lines, start=1):
            day = item.care_date or claim["care_date"]
            optam_level = bool(item.optam) or item.practitioner_sector == 1 or (item.practitioner_sector is None and item.optam is None)
            care = CareLine(day, item.act_code, item.quantity, item.amount_charged_cents, item.secu_base_cents,
                            item.secu_rate_pct, item.secu_paid_cents, item.participation_cents, optam_level)
            draft.lines.append(LineInput(n, ben, care, item.act_label, item.practitioner_id, item.practitioner_sector,
                                         item.optam, item.payee))
        await settlement.lock_beneficiaries(conn, {ben.member_id})
        ledgers = await settlement.load_ledgers(conn, {ben.member_id})
        keys = [settlement.dedupe_key(ben.member_id, i.care.care_date, i.care.act_code, i.care.charged_cents, i.practitioner_id) for i in draft.lines]
        paid_keys = await settlement.paid_lines_by_key(conn, keys)
        now = settlement.now_utc()
        settlement.value_lines(catalog, draft, ledgers, paid_keys, now)
        await pg.copy(conn, "claim_lines", settlement.LINE_COLUMNS, draft.records)
        reason = draft.first_reason if draft.status != "settled" else None
        await conn.execute(
            "UPDATE claims SET status = $2, settled_at = $3, rejection_reason = $4 WHERE id = $1",
            claim_id, draft.status, now, reason if draft.status == "rejected" else None,
        )
        await conn.execute(
            "INSERT INTO claim_status_history (claim_id, status, reason_code, actor, at) VALUES ($1, $2, $3, $4, $5)",
            claim_id, draft.status, reason, f"agent:{agent_id}", now,
        )
        await pg.publish(conn, [(settlement.outcome_event(draft, now), str(holder.member_id))])
        await audit(conn, agent_id, "value_claim", claim_id, lines=len(lines), status=draft.status)
        return await _claim_detail(conn, claim_id)


async def reject_claim(db: Database, agent_id: uuid.UUID, claim_id: uuid.UUID, reason_code: str, comment: str | None) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        claim = await _reviewable(conn, claim_id)
        now = settlement.now_utc()
        await conn.execute(
            "UPDATE claims SET status = 'rejected', settled_at = $2, rejection_reason = $3 WHERE id = $1",
            claim_id, now, reason_code,
        )
        await conn.execute(
            "INSERT INTO claim_status_history (claim_id, status, reason_code, actor, at) VALUES ($1, 'rejected', $2, $3, $4)",
            claim_id, reason_code, f"agent:{agent_id}", now,
        )
        await pg.publish(conn, [(
            ClaimRejected(
                claim_id=claim_id, contract_number=claim["contract_number"], holder_member_id=claim["holder_member_id"],
                beneficiary_member_id=claim["beneficiary_member_id"], source=claim["source"],
                external_ref=claim["external_ref"], submission_id=claim["submission_id"], reason_code=reason_code,
                reason=REASONS[reason_code], rejected_at=now,
            ),
            str(claim["holder_member_id"]),
        )])
        await audit(conn, agent_id, "reject_claim", claim_id, reason_code=reason_code, comment=comment)
        return await _claim_detail(conn, claim_id)


async def list_disputes(db: Database, agent_id: uuid.UUID, limit: int) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        rows = await conn.fetch(
            "SELECT d.id, d.comment, d.created_at, d.member_id, d.claim_id, d.line_id, l.care_date, l.act_label,"
            " l.mutuelle_paid_cents, l.beneficiary_member_id, c.contract_number, c.external_ref, c.source"
            " FROM disputes d JOIN claim_lines l ON l.id = d.line_id JOIN claims c ON c.id = d.claim_id"
            " ORDER BY d.created_at DESC, d.id LIMIT $1", limit,
        )
        await audit(conn, agent_id, "list_disputes", None)
    return {"items": [dict(r) for r in rows]}
