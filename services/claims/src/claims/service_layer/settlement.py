"""Valuing and settling claims, the same for a Sécu décompte and for a paper claim an agent
values: beneficiaries locked, their ceiling ledgers and the earlier paid lines (duplicates)
loaded, each line valued by the domain rules, then lines, statuses and events written in the
caller's transaction."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg

from claims.adapters import pg
from claims.domain.plans import PlanCatalog
from claims.domain.valuation import REASONS, CareLine, Coverage, Ledger, Use, Valuation, value_line
from shared.contracts.claims import ClaimReceived, ClaimRejected, ClaimSettled, SettledLine

LINE_COLUMNS = (
    "id", "claim_id", "line_number", "kind", "reverses_line_id", "beneficiary_member_id", "contract_number",
    "care_date", "act_code", "act_label", "quantity", "amount_charged_cents", "secu_base_cents", "secu_rate_pct",
    "secu_paid_cents", "participation_cents", "mutuelle_paid_cents", "out_of_pocket_cents", "practitioner_id",
    "practitioner_sector", "optam", "payee", "category", "post", "plan_code", "plan_year", "ceiling_keys", "sessions",
    "capped", "status", "rejection_reason", "duplicate_of", "dedupe_key", "settled_at",
)
CLAIM_COLUMNS = (
    "id", "source", "external_ref", "submission_id", "contract_number", "holder_member_id", "beneficiary_member_id",
    "status", "received_at", "settled_at",
)
HISTORY_COLUMNS = ("claim_id", "status", "reason_code", "actor", "at")


@dataclass(frozen=True)
class Beneficiary:
    member_id: uuid.UUID
    membership_number: str
    contract_number: str
    first_name: str
    last_name: str
    plan_code: str
    coverage: Coverage
    holder_member_id: uuid.UUID

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


# The holder of b's contract, as the contract_holders view defines it (role "holder", else the
# first enrolled), looked up for b's contract alone through beneficiaries_contract: joining the
# view itself sorts every beneficiary of every contract on each call (tens of ms at 20,000).
def holder_of(alias: str) -> str:
    return (
        " CROSS JOIN LATERAL (SELECT hb.member_id AS holder_member_id FROM beneficiaries hb"
        f" WHERE hb.contract_number = {alias}.contract_number"
        " ORDER BY (hb.role IS NOT DISTINCT FROM 'holder') DESC, hb.seq LIMIT 1) h"
    )


HOLDER_OF_B = holder_of("b")

_BENEFICIARIES = (
    "SELECT b.member_id, b.membership_number, b.contract_number, b.first_name, b.last_name, b.plan_code,"
    " b.coverage_start, b.coverage_end, h.holder_member_id"
    " FROM beneficiaries b" + HOLDER_OF_B
)


def _beneficiary(row: asyncpg.Record) -> Beneficiary:
    return Beneficiary(
        row["member_id"], row["membership_number"], row["contract_number"], row["first_name"], row["last_name"],
        row["plan_code"], Coverage(row["coverage_start"], row["coverage_end"]), row["holder_member_id"],
    )


async def beneficiaries_by_number(conn: asyncpg.Connection, numbers: list[str]) -> dict[str, Beneficiary]:
    rows = await conn.fetch(_BENEFICIARIES + " WHERE b.membership_number = ANY($1::text[])", numbers)
    return {r["membership_number"]: _beneficiary(r) for r in rows}


async def beneficiary(conn: asyncpg.Connection, member_id: uuid.UUID) -> Beneficiary | None:
    row = await conn.fetchrow(_BENEFICIARIES + " WHERE b.member_id = $1", member_id)
    return _beneficiary(row) if row else None


async def lock_beneficiaries(conn: asyncpg.Connection, member_ids: set[uuid.UUID]) -> None:
    """Serialise everyone valuing lines for these beneficiaries (ceilings, duplicates), in a
    fixed order so two writers never deadlock."""
    keys = sorted({m.int & 0x7FFF_FFFF_FFFF_FFFF for m in member_ids})
    await conn.execute("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) s", keys)


async def load_ledgers(conn: asyncpg.Connection, member_ids: set[uuid.UUID]) -> dict[uuid.UUID, Ledger]:
    ledgers: dict[uuid.UUID, Ledger] = defaultdict(Ledger)
    rows = await conn.fetch(
        "SELECT beneficiary_member_id, ceiling_keys, care_date, mutuelle_paid_cents, sessions FROM claim_lines"
        " WHERE beneficiary_member_id = ANY($1::uuid[]) AND ceiling_keys IS NOT NULL AND status = 'paid'",
        list(member_ids),
    )
    for r in rows:
        ledgers[r["beneficiary_member_id"]].add(list(r["ceiling_keys"]), Use(r["care_date"], r["mutuelle_paid_cents"], r["sessions"]))
    return ledgers


async def paid_lines_by_key(conn: asyncpg.Connection, keys: list[str]) -> dict[str, uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (dedupe_key) dedupe_key, id FROM claim_lines"
        " WHERE dedupe_key = ANY($1::text[]) AND status = 'paid' AND kind = 'original'"
        " AND NOT EXISTS (SELECT 1 FROM claim_lines r WHERE r.reverses_line_id = claim_lines.id)"
        " ORDER BY dedupe_key, settled_at",
        keys,
    )
    return {r["dedupe_key"]: r["id"] for r in rows}


def dedupe_key(member_id: uuid.UUID, care_date: date, act_code: str, charged_cents: int, practitioner: str | None) -> str:
    """The same care: beneficiary, care date, act, amount and practitioner (domain note §1.5)."""
    return f"{member_id}|{care_date.isoformat()}|{act_code}|{charged_cents}|{practitioner or ''}"


@dataclass(frozen=True)
class LineInput:
    line_number: int
    beneficiary: Beneficiary
    care: CareLine
    act_label: str
    practitioner_id: str | None
    practitioner_sector: int | None
    optam: bool | None
    payee: str


@dataclass
class ClaimDraft:
    """A claim about to be settled: its lines and what came of them."""

    claim_id: uuid.UUID
    source: str
    external_ref: str
    holder: Beneficiary
    beneficiary: Beneficiary
    submission_id: uuid.UUID | None = None
    lines: list[LineInput] = field(default_factory=list)
    records: list[tuple] = field(default_factory=list)
    settled: list[SettledLine] = field(default_factory=list)
    status: str = "settled"
    first_reason: str | None = None


def value_lines(
    catalog: PlanCatalog,
    draft: ClaimDraft,
    ledgers: dict[uuid.UUID, Ledger],
    paid_keys: dict[str, uuid.UUID],
    now: datetime,
) -> None:
    """Values every line of a draft; `ledgers` and `paid_keys` take the paid lines in, so the
    next line (or claim) of the batch sees them."""
    paid = 0
    for item in draft.lines:
        care = item.care
        ben = item.beneficiary
        key = dedupe_key(ben.member_id, care.care_date, care.act_code, care.charged_cents, item.practitioner_id)
        plan = catalog.plan_for(ben.plan_code, care.care_date)
        duplicate_of = paid_keys.get(key)
        line_id = uuid.uuid4()
        if duplicate_of is not None:
            v = Valuation("rejected", 0, max(0, care.charged_cents - care.secu_paid_cents), 0, None, "duplicate")
        else:
            v = value_line(plan, ben.coverage, care, ledgers[ben.member_id])
        if v.status == "paid":
            paid += 1
            paid_keys[key] = line_id
        elif draft.first_reason is None:
            draft.first_reason = v.reason_code
        g = v.guarantee
        draft.records.append((
            line_id, draft.claim_id, item.line_number, "original", None, ben.member_id, ben.contract_number,
            care.care_date, care.act_code, item.act_label, care.quantity, care.charged_cents, care.base_cents,
            care.secu_rate_pct, care.secu_paid_cents, care.participation_cents, v.mutuelle_cents,
            v.out_of_pocket_cents, item.practitioner_id, item.practitioner_sector, item.optam, item.payee,
            g.category if g else None, g.post if g else None, plan.code if plan else ben.plan_code,
            plan.year if plan else None, list(v.ceiling_keys) or None, v.sessions, v.capped, v.status,
            v.reason_code, duplicate_of, key, now,
        ))
        draft.settled.append(SettledLine(
            line_id=line_id, line_number=item.line_number, beneficiary_member_id=ben.member_id,
            beneficiary_name=ben.name, care_date=care.care_date, act_code=care.act_code, act_label=item.act_label,
            quantity=care.quantity, amount_charged_cents=care.charged_cents, secu_base_cents=care.base_cents,
            secu_rate_pct=care.secu_rate_pct, secu_paid_cents=care.secu_paid_cents,
            participation_cents=care.participation_cents, mutuelle_paid_cents=v.mutuelle_cents,
            out_of_pocket_cents=v.out_of_pocket_cents, payee=item.payee, status=v.status,
            rejection_reason=v.reason_code,
        ))
    draft.status = "settled" if paid == len(draft.lines) else "rejected" if paid == 0 else "partially_rejected"


def received_event(draft: ClaimDraft, status: str, received_at: datetime) -> ClaimReceived:
    return ClaimReceived(
        claim_id=draft.claim_id, contract_number=draft.holder.contract_number, holder_member_id=draft.holder.member_id,
        beneficiary_member_id=draft.beneficiary.member_id, source=draft.source, external_ref=draft.external_ref,
        submission_id=draft.submission_id, status=status, received_at=received_at,
    )


def outcome_event(draft: ClaimDraft, now: datetime) -> ClaimSettled | ClaimRejected:
    if draft.status == "rejected":
        code = draft.first_reason or "not_covered"
        return ClaimRejected(
            claim_id=draft.claim_id, contract_number=draft.holder.contract_number,
            holder_member_id=draft.holder.member_id, beneficiary_member_id=draft.beneficiary.member_id,
            source=draft.source, external_ref=draft.external_ref, submission_id=draft.submission_id,
            reason_code=code, reason=REASONS.get(code, "Demande rejetée."), rejected_at=now,
        )
    lines = draft.settled
    return ClaimSettled(
        claim_id=draft.claim_id, contract_number=draft.holder.contract_number, holder_member_id=draft.holder.member_id,
        beneficiary_member_ids=list(dict.fromkeys(line.beneficiary_member_id for line in lines)),
        source=draft.source, external_ref=draft.external_ref, submission_id=draft.submission_id, status=draft.status,
        lines=lines,
        total_charged_cents=sum(line.amount_charged_cents for line in lines),
        total_secu_paid_cents=sum(line.secu_paid_cents for line in lines),
        total_mutuelle_paid_cents=sum(line.mutuelle_paid_cents for line in lines),
        total_out_of_pocket_cents=sum(line.out_of_pocket_cents for line in lines),
        settled_at=now,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
