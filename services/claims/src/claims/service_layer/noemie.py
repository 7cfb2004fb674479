"""The Sécurité sociale feed (NOEMIE): a CSV of décompte lines already valued by the Sécu.

Each décompte becomes one claim, settled at once (ClaimReceived, then ClaimSettled or, when every
line is rejected, ClaimRejected, through the outbox). Importing a file again adds nothing: a
décompte already in is counted as duplicates (key: decompte_id, line_number). A malformed row is
reported with its line number and the rest goes in. Work is done in batches of décomptes, each in
one transaction, with COPY for the rows."""

from __future__ import annotations

import asyncio
import csv
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from claims.adapters import pg
from claims.domain.money import parse_euros
from claims.domain.plans import PlanCatalog
from claims.domain.valuation import CareLine
from claims.service_layer import settlement
from claims.service_layer.settlement import Beneficiary, ClaimDraft, LineInput
from shared.platform.db import Database

COLUMNS = (
    "decompte_id", "line_number", "membership_number", "care_date", "act_code", "act_label", "quantity",
    "amount_charged", "base", "secu_rate", "secu_paid", "participation", "practitioner_id", "practitioner_sector",
    "optam", "payee",
)
_CODE = re.compile(r"^[A-Z0-9_]{1,20}$")
_TRUE = {"true", "1", "oui", "yes", "o", "y"}
_FALSE = {"false", "0", "non", "no", "n", ""}
IMPORT_LOCK = 727275  # one import at a time: a second one waits for the first


@dataclass(frozen=True)
class NoemieRow:
    file_line: int
    decompte_id: str
    line_number: int
    membership_number: str
    care: CareLine
    act_label: str
    practitioner_id: str | None
    practitioner_sector: int | None
    optam: bool | None
    payee: str


@dataclass
class ImportReport:
    settled: int = 0  # lines paid
    rejected: int = 0  # lines rejected (not covered, ceiling, duplicate of a paid care…)
    duplicates: int = 0  # lines already imported (same decompte_id, line_number)
    malformed: int = 0
    claims_settled: int = 0
    claims_rejected: int = 0
    problems: list[str] = field(default_factory=list)
    paced_s: float = 0.0  # time held between batches for the events' consumers (import_file's pace)

    def malformed_row(self, line: int, reason: str) -> None:
        self.malformed += 1
        self.problems.append(f"ligne {line} : {reason}")

    def summary(self) -> str:
        return (
            f"settled: {self.settled}, rejected: {self.rejected}, duplicates: {self.duplicates},"
            f" malformed: {self.malformed} (lines); claims settled: {self.claims_settled},"
            f" claims rejected: {self.claims_rejected}"
            + (f"; paced on its consumers {self.paced_s:.1f} s" if self.paced_s >= 0.1 else "")
        )


def parse_row(raw: dict[str, str | None], file_line: int) -> NoemieRow:
    def text(name: str, *, required: bool = True, max_len: int = 200) -> str:
        value = (raw.get(name) or "").strip()
        if required and not value:
            raise ValueError(f"{name} est vide")
        if len(value) > max_len:
            raise ValueError(f"{name} est trop long")
        return value

    def integer(name: str, low: int, high: int) -> int:
        value = text(name)
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"{name} doit être un entier entre {low} et {high} (lu : {value!r})")
        return int(value)

    def money(name: str) -> int:
        try:
            return parse_euros(text(name))
        except ValueError as exc:
            raise ValueError(f"{name} : {exc}") from None

    act_code = text("act_code", max_len=20).upper()
    if not _CODE.match(act_code):
        raise ValueError(f"act_code invalide : {act_code!r}")
    try:
        care_date = date.fromisoformat(text("care_date"))
    except ValueError:
        raise ValueError(f"care_date n'est pas une date AAAA-MM-JJ : {raw.get('care_date')!r}") from None
    charged, base, paid, part = money("amount_charged"), money("base"), money("secu_paid"), money("participation")
    rate = integer("secu_rate", 0, 100)
    if paid + part > charged:
        raise ValueError("secu_paid + participation dépasse amount_charged")
    sector_text = text("practitioner_sector", required=False)
    if sector_text not in ("", "1", "2", "3"):
        raise ValueError(f"practitioner_sector doit valoir 1, 2 ou 3 (lu : {sector_text!r})")
    sector = int(sector_text) if sector_text else None
    optam_text = text("optam", required=False).lower()
    if optam_text not in _TRUE | _FALSE:
        raise ValueError(f"optam doit valoir true ou false (lu : {optam_text!r})")
    optam = None if optam_text == "" else optam_text in _TRUE
    payee = text("payee").lower()
    if payee not in ("member", "practitioner"):
        raise ValueError(f"payee doit valoir member ou practitioner (lu : {payee!r})")
    # Secteur 1 doctors charge no uncontrolled fee excess: the OPTAM rate applies to them.
    optam_level = bool(optam) or sector == 1 or (sector is None and optam is None)
    return NoemieRow(
        file_line=file_line,
        decompte_id=text("decompte_id", max_len=64),
        line_number=integer("line_number", 1, 9999),
        membership_number=text("membership_number", max_len=32),
        care=CareLine(care_date, act_code, integer("quantity", 1, 999), charged, base, rate, paid, part, optam_level),
        act_label=text("act_label"),
        practitioner_id=text("practitioner_id", required=False, max_len=32) or None,
        practitioner_sector=sector,
        optam=optam,
        payee=payee,
    )


def read_rows(path: Path, report: ImportReport) -> Iterator[NoemieRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: colonnes manquantes : {', '.join(missing)}")
        for raw in reader:
            line = reader.line_num
            if None in raw:
                report.malformed_row(line, "trop de colonnes")
                continue
            try:
                yield parse_row(raw, line)
            except ValueError as exc:
                report.malformed_row(line, str(exc))


def by_decompte(rows: Iterable[NoemieRow]) -> dict[str, list[NoemieRow]]:
    groups: dict[str, list[NoemieRow]] = {}
    for row in rows:
        groups.setdefault(row.decompte_id, []).append(row)
    return groups


async def import_file(db: Database, catalog: PlanCatalog, path: Path, *, batch_size: int = 50,
                      pace: Callable[[], Awaitable[None]] | None = None) -> ImportReport:
    """Batches of `batch_size` décomptes (~125 lines), each settled in its own transaction: a
    claim's settlement time is its batch's, so a small batch is a short wait before its events
    can be published. `pace`, awaited after each batch, holds the next one while the events
    already recorded wait to be handled."""
    report = ImportReport()
    groups = by_decompte(read_rows(path, report))
    ids = list(groups)
    for start in range(0, len(ids), batch_size):
        batch = {i: groups[i] for i in ids[start:start + batch_size]}
        async with db.transaction() as session:
            conn = await pg.connection(session)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
            await _import_batch(conn, catalog, batch, report)
        if pace is not None and start + batch_size < len(ids):
            await pace()
    return report


async def outbox_room(db: Database, limit: int, stall_seconds: float = 30.0) -> None:
    """Returns once claims' outbox holds fewer than `limit` unpublished events (the running
    service's relay publishes them), or when that count has not fallen for `stall_seconds`
    (the service is down: the import need not wait for it)."""
    best, since = None, time.monotonic()
    while True:
        async with db.transaction() as session:
            conn = await pg.connection(session)
            pending = await conn.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT $1) AS p", limit)
        if pending < limit:
            return
        if best is None or pending < best:
            best, since = pending, time.monotonic()
        elif time.monotonic() - since > stall_seconds:
            return
        await asyncio.sleep(0.1)


async def _import_batch(conn, catalog: PlanCatalog, batch: dict[str, list[NoemieRow]], report: ImportReport) -> None:
    already = {
        r["external_ref"]
        for r in await conn.fetch(
            "SELECT external_ref FROM claims WHERE source = 'noemie' AND external_ref = ANY($1::text[])", list(batch)
        )
    }
    people = await settlement.beneficiaries_by_number(
        conn, list({row.membership_number for rows in batch.values() for row in rows})
    )
    drafts: list[ClaimDraft] = []
    for decompte_id, rows in batch.items():
        if decompte_id in already:
            report.duplicates += len(rows)
            continue
        draft = _draft(decompte_id, rows, people, report)
        if draft is not None:
            drafts.append(draft)
    if not drafts:
        return
    member_ids = {item.beneficiary.member_id for d in drafts for item in d.lines}
    await settlement.lock_beneficiaries(conn, member_ids)
    ledgers = await settlement.load_ledgers(conn, member_ids)
    keys = [
        settlement.dedupe_key(i.beneficiary.member_id, i.care.care_date, i.care.act_code, i.care.charged_cents, i.practitioner_id)
        for d in drafts for i in d.lines
    ]
    paid_keys = await settlement.paid_lines_by_key(conn, keys)
    now = settlement.now_utc()
    claims, lines, history, events = [], [], [], []
    for draft in drafts:
        settlement.value_lines(catalog, draft, ledgers, paid_keys, now)
        claims.append((draft.claim_id, "noemie", draft.external_ref, None, draft.holder.contract_number,
                       draft.holder.member_id, draft.beneficiary.member_id, draft.status, now, now))
        lines.extend(draft.records)
        history += [(draft.claim_id, "received", None, "noemie", now),
                    (draft.claim_id, draft.status, draft.first_reason if draft.status != "settled" else None, "noemie", now)]
        key = str(draft.holder.member_id)
        events += [(settlement.received_event(draft, "received", now), key), (settlement.outcome_event(draft, now), key)]
        paid = sum(1 for r in draft.records if r[29] == "paid")
        report.settled += paid
        report.rejected += len(draft.records) - paid
        if draft.status == "rejected":
            report.claims_rejected += 1
        else:
            report.claims_settled += 1
    await pg.copy(conn, "claims", settlement.CLAIM_COLUMNS, claims)
    await pg.copy(conn, "claim_lines", settlement.LINE_COLUMNS, lines)
    await pg.copy(conn, "claim_status_history", settlement.HISTORY_COLUMNS, history)
    await pg.publish(conn, events)


def _draft(decompte_id: str, rows: list[NoemieRow], people: dict[str, Beneficiary], report: ImportReport) -> ClaimDraft | None:
    draft: ClaimDraft | None = None
    numbers: set[int] = set()
    for row in sorted(rows, key=lambda r: r.line_number):
        person = people.get(row.membership_number)
        if person is None:
            report.malformed_row(row.file_line, f"adhérent inconnu : {row.membership_number}")
            continue
        if row.line_number in numbers:
            report.malformed_row(row.file_line, f"ligne {row.line_number} du décompte {decompte_id} en double dans le fichier")
            continue
        if draft is None:
            holder = Beneficiary(person.holder_member_id, "", person.contract_number, "", "", person.plan_code,
                                 person.coverage, person.holder_member_id)
            draft = ClaimDraft(uuid.uuid4(), "noemie", decompte_id, holder, person)
        elif person.contract_number != draft.holder.contract_number:
            report.malformed_row(row.file_line, f"le décompte {decompte_id} mélange plusieurs contrats")
            continue
        numbers.add(row.line_number)
        draft.lines.append(LineInput(row.line_number, person, row.care, row.act_label, row.practitioner_id,
                                     row.practitioner_sector, row.optam, row.payee))
    return draft
