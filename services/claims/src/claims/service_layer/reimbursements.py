"""What a member sees: the contract's beneficiaries they may see, the guarantees and their
ceilings, the reimbursement lines; and the reports ("je ne reconnais pas ce remboursement").

Visibility, enforced here: the contract's holder sees every beneficiary; any other member sees
their own lines only. A line the caller may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from claims.adapters import pg
from claims.domain.plans import CATEGORIES, PERIOD_WORDS, PlanCatalog
from claims.domain.valuation import REASONS, in_window
from claims.service_layer import errors, settlement
from claims.service_layer.settlement import Beneficiary
from shared.contracts.claims import ReimbursementDisputed
from shared.platform.db import Database


@dataclass(frozen=True)
class Viewer:
    me: Beneficiary
    visible: list[uuid.UUID]

    @property
    def is_holder(self) -> bool:
        return self.me.holder_member_id == self.me.member_id


async def viewer(conn: asyncpg.Connection, member_id: uuid.UUID) -> Viewer | None:
    me = await settlement.beneficiary(conn, member_id)
    if me is None:
        return None
    if me.holder_member_id != member_id:
        return Viewer(me, [member_id])
    ids = await conn.fetch("SELECT member_id FROM beneficiaries WHERE contract_number = $1 ORDER BY seq", me.contract_number)
    return Viewer(me, [r["member_id"] for r in ids])


async def beneficiaries(reads: asyncpg.Pool, member_id: uuid.UUID) -> list[dict[str, Any]]:
    async with reads.acquire() as conn:
        view = await viewer(conn, member_id)
        if view is None:
            raise errors.no_contract()
        rows = await conn.fetch(
            "SELECT b.*, h.holder_member_id FROM beneficiaries b" + settlement.HOLDER_OF_B +
            " WHERE b.member_id = ANY($1::uuid[]) ORDER BY b.seq", view.visible,
        )
    return [
        {
            "member_id": r["member_id"], "first_name": r["first_name"], "last_name": r["last_name"],
            "birth_date": r["birth_date"], "membership_number": r["membership_number"],
            "contract_number": r["contract_number"], "plan_code": r["plan_code"],
            "role": "holder" if r["member_id"] == r["holder_member_id"] else (r["role"] or "beneficiary"),
            "coverage_start": r["coverage_start"], "coverage_end": r["coverage_end"], "is_me": r["member_id"] == member_id,
        }
        for r in rows
    ]


async def guarantees(db: Database, catalog: PlanCatalog, member_id: uuid.UUID, today: date) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        view = await viewer(conn, member_id)
        if view is None:
            raise errors.no_contract()
        people = await conn.fetch(
            "SELECT member_id, first_name, last_name FROM beneficiaries WHERE member_id = ANY($1::uuid[]) ORDER BY seq",
            view.visible,
        )
        ledgers = await settlement.load_ledgers(conn, set(view.visible))
    plan = catalog.plan_for(view.me.plan_code, today) or catalog.latest(view.me.plan_code, today)
    if plan is None:
        raise errors.no_contract()

    def consumption(key: str, ceiling: int | None, period, sessions: int | None) -> list[dict[str, Any]]:
        out = []
        for p in people:
            used, count = ledgers[p["member_id"]].used(key, period, today) if p["member_id"] in ledgers else (0, 0)
            item: dict[str, Any] = {"beneficiary_member_id": p["member_id"], "beneficiary_name": f"{p['first_name']} {p['last_name']}"}
            if ceiling is not None:
                item |= {"consumed_cents": used, "remaining_cents": max(0, ceiling - used)}
            if sessions is not None:
                item |= {"sessions_used": count, "sessions_remaining": max(0, sessions - count)}
            out.append(item)
        return out

    categories: dict[str, list[dict[str, Any]]] = {}
    for g in plan.guarantees:
        entry: dict[str, Any] = {
            "post": g.post, "label": g.label, "words": g.words(), "formula": g.formula.value, "rate_pct": g.rate_pct,
            "amount_cents": g.amount_cents, "sessions": g.sessions, "ceiling_cents": g.own_ceiling(),
            "period": g.period.value if g.period else None, "optam": g.optam.value, "act_codes": list(g.acts),
            "shared_ceiling": g.group, "consumption": [],
        }
        if g.period is not None and (g.own_ceiling() is not None or g.sessions is not None):
            entry["consumption"] = consumption(f"post:{g.post}", g.own_ceiling(), g.period, g.sessions)
        categories.setdefault(g.category, []).append(entry)
    return {
        "plan_code": plan.code, "plan_label": plan.label, "plan_year": plan.year, "responsable": plan.responsable,
        "contract_number": view.me.contract_number,
        "categories": [{"category": c, "label": CATEGORIES[c], "guarantees": items} for c, items in categories.items()],
        "shared_ceilings": [
            {
                "name": grp.name, "label": grp.label, "ceiling_cents": grp.ceiling_cents, "period": grp.period.value,
                "words": f"{settlement_words(grp.ceiling_cents)} {PERIOD_WORDS[grp.period]}"
                + (f", {grp.renewal} équipement par période" if grp.renewal else ""),
                "consumption": consumption(f"group:{grp.name}", grp.ceiling_cents, grp.period, None),
            }
            for grp in plan.groups.values()
        ],
    }


def settlement_words(cents: int) -> str:
    from claims.domain.money import euros_fr

    return euros_fr(cents)


# -- lines ----------------------------------------------------------------------------------------

_LINE_FIELDS = (
    "l.id, l.claim_id, l.line_number, l.kind, l.reverses_line_id, l.care_date, l.beneficiary_member_id,"
    " b.first_name, b.last_name, l.act_code, l.act_label, l.quantity, l.amount_charged_cents, l.secu_base_cents,"
    " l.secu_rate_pct, l.secu_paid_cents, l.participation_cents, l.mutuelle_paid_cents, l.out_of_pocket_cents,"
    " l.payee, l.status, l.rejection_reason, l.duplicate_of, l.settled_at, l.category, l.post, l.plan_code,"
    " l.plan_year, l.capped, l.practitioner_id,"
    " EXISTS (SELECT 1 FROM disputes d WHERE d.line_id = l.id) AS reported"
)


def line_out(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"], "claim_id": r["claim_id"], "line_number": r["line_number"], "kind": r["kind"],
        "reverses_line_id": r["reverses_line_id"], "care_date": r["care_date"],
        "beneficiary": {"member_id": r["beneficiary_member_id"], "first_name": r["first_name"], "last_name": r["last_name"]},
        "act_code": r["act_code"], "act_label": r["act_label"], "quantity": r["quantity"],
        "category": r["category"],
        "amount_charged_cents": r["amount_charged_cents"], "secu_base_cents": r["secu_base_cents"],
        "secu_rate_pct": r["secu_rate_pct"], "secu_paid_cents": r["secu_paid_cents"],
        "participation_cents": r["participation_cents"], "mutuelle_paid_cents": r["mutuelle_paid_cents"],
        "out_of_pocket_cents": r["out_of_pocket_cents"], "payee": r["payee"], "status": r["status"],
        "rejection_reason": r["rejection_reason"],
        "rejection_reason_label": REASONS.get(r["rejection_reason"]) if r["rejection_reason"] else None,
        "duplicate_of": r["duplicate_of"], "settlement_date": r["settled_at"].date(), "reported": r["reported"],
        "currency": "EUR",
    }


def encode_cursor(care_date: date, line_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{care_date.isoformat()}|{line_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[date, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, line_id = raw.split("|")
        return date.fromisoformat(day), uuid.UUID(line_id)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid("cursor", "invalid_cursor", "Ce curseur de pagination n'est pas valide.") from None


@dataclass(frozen=True)
class LineFilter:
    start: date | None = None
    end: date | None = None
    beneficiary: uuid.UUID | None = None
    category: str | None = None


_VISIBLE_IDS = (
    # viewer()'s rule in one statement: the holder sees the contract, anyone else themselves.
    "SELECT coalesce(array_agg(b.member_id ORDER BY b.seq), '{}') AS ids FROM beneficiaries me" + settlement.holder_of("me") +
    " JOIN beneficiaries b ON b.contract_number = me.contract_number"
    " AND (h.holder_member_id = me.member_id OR b.member_id = me.member_id)"
    " WHERE me.member_id = $1"
)
_LINES_WHERE = (
    "l.beneficiary_member_id = ANY(c.ids) AND ($2::date IS NULL OR l.care_date >= $2)"
    " AND ($3::date IS NULL OR l.care_date <= $3) AND ($4::text IS NULL OR l.category = $4)"
)
_PAGE_AND_TOTALS = (
    # Who may be seen, the totals and one page in one round trip (each one more to PostgreSQL
    # is a write, a wake-up and a read on both sides); with no line on the page, the totals row
    # alone. `allowed` is false when the beneficiary asked for is not one the caller may see:
    # then no line is read. The page walks each beneficiary's index newest first (a few rows
    # each, the cursor an index bound), and only the page's rows are joined to their names and
    # reports; the totals read the same index alone (its INCLUDE columns, migration 0005).
    f"WITH visible AS ({_VISIBLE_IDS}), c AS (SELECT $8::uuid IS NULL OR $8::uuid = ANY(visible.ids) AS allowed,"
    " CASE WHEN $8::uuid IS NULL THEN visible.ids WHEN $8::uuid = ANY(visible.ids) THEN ARRAY[$8::uuid]"
    " ELSE '{}'::uuid[] END AS ids FROM visible)"
    " SELECT c.allowed, t.*, p.* FROM c CROSS JOIN LATERAL (SELECT count(*) AS total_lines,"
    " coalesce(sum(amount_charged_cents), 0)::bigint AS total_charged,"
    " coalesce(sum(secu_paid_cents), 0)::bigint AS total_secu, coalesce(sum(mutuelle_paid_cents), 0)::bigint AS total_mutuelle,"
    f" coalesce(sum(out_of_pocket_cents), 0)::bigint AS total_oop FROM claim_lines l WHERE {_LINES_WHERE}) t"
    f" LEFT JOIN LATERAL (SELECT {_LINE_FIELDS} FROM ("
    "   SELECT newest.* FROM unnest(c.ids) AS v(member_id) CROSS JOIN LATERAL ("
    "     SELECT * FROM claim_lines l WHERE l.beneficiary_member_id = v.member_id"
    "     AND ($2::date IS NULL OR l.care_date >= $2) AND ($3::date IS NULL OR l.care_date <= $3)"
    "     AND ($4::text IS NULL OR l.category = $4) AND (l.care_date, l.id) < ($5::date, $6::uuid)"
    "     ORDER BY l.care_date DESC, l.id DESC LIMIT $7) newest"
    "   ORDER BY newest.care_date DESC, newest.id DESC LIMIT $7) l"
    " JOIN beneficiaries b ON b.member_id = l.beneficiary_member_id ORDER BY l.care_date DESC, l.id DESC) p ON true"
)
_FIRST_PAGE = (date.max, uuid.UUID(int=(1 << 128) - 1))  # before any cursor: above every line


async def list_lines(reads: asyncpg.Pool, member_id: uuid.UUID, f: LineFilter, cursor: str | None, limit: int) -> dict[str, Any]:
    """A member's lines, newest first, on the read pool: the page this whole space opens most."""
    if f.category is not None and f.category not in CATEGORIES:
        raise errors.invalid("category", "unknown_category", f"Catégorie inconnue (attendu : {', '.join(CATEGORIES)}).")
    if f.start and f.end and f.start > f.end:
        raise errors.invalid("from", "invalid_range", "La date de début doit précéder la date de fin.")
    after = decode_cursor(cursor) if cursor else None
    async with reads.acquire() as conn:
        rows = await conn.fetch(
            _PAGE_AND_TOTALS, member_id, f.start, f.end, f.category, *(after or _FIRST_PAGE), limit + 1, f.beneficiary,
        )
    totals = rows[0]
    if not totals["allowed"]:
        raise errors.invalid("beneficiary", "unknown_beneficiary", "Ce bénéficiaire ne fait pas partie de ceux que vous pouvez consulter.")
    page = [r for r in rows if r["id"] is not None][:limit]
    return {
        "items": [line_out(r) for r in page],
        "next_cursor": encode_cursor(page[-1]["care_date"], page[-1]["id"]) if len(rows) > limit else None,
        "totals": {
            "lines": totals["total_lines"], "amount_charged_cents": totals["total_charged"], "secu_paid_cents": totals["total_secu"],
            "mutuelle_paid_cents": totals["total_mutuelle"], "out_of_pocket_cents": totals["total_oop"], "currency": "EUR",
        },
    }


async def _visible_line(conn: asyncpg.Connection, member_id: uuid.UUID, line_id: uuid.UUID) -> asyncpg.Record:
    view = await viewer(conn, member_id)
    row = await conn.fetchrow(
        f"SELECT {_LINE_FIELDS} FROM claim_lines l JOIN beneficiaries b ON b.member_id = l.beneficiary_member_id"
        " WHERE l.id = $1", line_id,
    )
    if row is None or view is None or row["beneficiary_member_id"] not in view.visible:
        raise errors.line_not_found()
    return row


async def line_detail(db: Database, catalog: PlanCatalog, member_id: uuid.UUID, line_id: uuid.UUID) -> dict[str, Any]:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        row = await _visible_line(conn, member_id, line_id)
        claim = await conn.fetchrow(
            "SELECT id, source, external_ref, status, received_at, settled_at FROM claims WHERE id = $1", row["claim_id"]
        )
        history = await conn.fetch(
            "SELECT status, reason_code, at FROM claim_status_history WHERE claim_id = $1 ORDER BY id", row["claim_id"]
        )
        reports = await conn.fetch(
            "SELECT id, comment, created_at FROM disputes WHERE line_id = $1 ORDER BY created_at", line_id
        )
    plan = catalog.plans.get((row["plan_code"], row["plan_year"])) if row["plan_year"] else None
    guarantee = plan.by_post(row["post"]) if plan and row["post"] else None
    out = line_out(row)
    out["claim"] = {
        "id": claim["id"], "source": claim["source"], "reference": claim["external_ref"], "status": claim["status"],
        "received_at": claim["received_at"], "settled_at": claim["settled_at"],
        "history": [{"status": h["status"], "reason_code": h["reason_code"], "at": h["at"]} for h in history],
    }
    out["guarantee"] = (
        {"plan_code": plan.code, "plan_year": plan.year, "post": guarantee.post, "label": guarantee.label,
         "words": guarantee.words(), "ceiling_applied": row["capped"]}
        if guarantee and plan else None
    )
    out["reports"] = [{"id": r["id"], "comment": r["comment"], "created_at": r["created_at"]} for r in reports]
    return out


async def report_line(db: Database, member_id: uuid.UUID, line_id: uuid.UUID, comment: str | None) -> uuid.UUID:
    async with db.transaction() as session:
        conn = await pg.connection(session)
        row = await _visible_line(conn, member_id, line_id)
        holder = await conn.fetchval(
            "SELECT holder_member_id FROM claims WHERE id = $1", row["claim_id"]
        )
        dispute_id, now = uuid.uuid4(), settlement.now_utc()
        await conn.execute(
            "INSERT INTO disputes (id, line_id, claim_id, member_id, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            dispute_id, line_id, row["claim_id"], member_id, comment, now,
        )
        await pg.publish(conn, [(
            ReimbursementDisputed(
                dispute_id=dispute_id, claim_id=row["claim_id"], line_id=line_id, member_id=member_id,
                holder_member_id=holder, beneficiary_member_id=row["beneficiary_member_id"],
                care_date=row["care_date"], act_label=row["act_label"], comment=comment, disputed_at=now,
            ),
            str(holder),
        )])
    return dispute_id
