"""The antivirus pass: every pending file goes through clamd; nothing is served or passed on
before it is `clean`. When clamd is away the files wait (uploads are still accepted) and this
loop scans them once it answers again. A submission whose files are all clean is submitted to
claims (InvoiceSubmitted, through the outbox) exactly once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from sqlmodel import select

from documents.adapters.antivirus import ScannerUnavailable
from documents.adapters.tables import Document, Submission
from documents.domain import submissions as states
from documents.service_layer.context import PRODUCER, Documents
from shared.contracts.documents import InvoiceSubmitted
from shared.platform.outbox import record_event

log = logging.getLogger(__name__)


async def scan_loop(docs: Documents) -> None:
    clamd_away = False
    while True:
        try:
            await scan_pending(docs)
            if clamd_away:
                log.info("clamd is back, pending files scanned")
                clamd_away = False
        except asyncio.CancelledError:
            raise
        except ScannerUnavailable as exc:
            if not clamd_away:
                log.warning("clamd unavailable, files stay pending", extra={"error_type": str(exc)})
                clamd_away = True
        except Exception as exc:
            log.warning("scan pass failed, will retry", extra={"error_type": type(exc).__name__})
        docs.scan_wake.clear()
        try:
            await asyncio.wait_for(docs.scan_wake.wait(), timeout=docs.settings.scan_poll_seconds)
        except TimeoutError:
            pass


async def scan_pending(docs: Documents) -> int:
    scanned = 0
    while await scan_one(docs):
        scanned += 1
    return scanned


async def scan_one(docs: Documents) -> bool:
    """Scans the oldest pending file (row-locked, so replicas share the work). False when none."""
    async with docs.db.transaction() as session:
        document = (
            await session.exec(
                select(Document).where(Document.scan_status == "pending").order_by(Document.created_at)
                .limit(1).with_for_update(skip_locked=True)
            )
        ).first()
        if document is None:
            return False
        async with docs.storage.local_file(document.storage_key) as path:
            verdict = await docs.scanner.scan(path)  # ScannerUnavailable: rolled back, stays pending
        document.scan_status = verdict.status
        document.scan_detail = verdict.detail
        document.scanned_at = datetime.now(UTC)
        if verdict.status != "clean":
            # Quarantine: out of the served area, kept for the security team.
            target = f"quarantine/{document.storage_key}"
            await docs.storage.move(document.storage_key, target)
            document.storage_key = target
            log.warning("uploaded file quarantined", extra={"document_id": str(document.id), "verdict": verdict.status})
        session.add(document)
        await session.flush()
        if document.submission_id:
            await _advance_submission(session, document.submission_id)
        elif document.thread_id:
            pass  # message attachments: served once clean, nothing to pass on
    return True


async def _advance_submission(session, submission_id: uuid.UUID) -> None:
    submission = (
        await session.exec(select(Submission).where(Submission.id == submission_id).with_for_update())
    ).one()
    if submission.status != states.SCANNING:
        return
    files = list(await session.exec(select(Document).where(Document.submission_id == submission_id)))
    if any(f.scan_status == "pending" for f in files):
        return
    now = datetime.now(UTC)
    bad = [f.file_name for f in files if f.scan_status != "clean"]
    if bad:
        submission.status = states.QUARANTINED
        submission.status_message = states.quarantined_message(bad)
    else:
        submission.status = states.SUBMITTED
        submission.status_message = states.message_for(states.SUBMITTED)
        submission.submitted_at = now
        await record_event(
            session,
            InvoiceSubmitted(
                submission_id=submission.id,
                member_id=submission.member_id,
                beneficiary_member_id=submission.beneficiary_member_id,
                beneficiary_membership_number=submission.beneficiary_membership_number,
                contract_number=submission.contract_number,
                care_type=submission.care_type,
                care_date=submission.care_date,
                amount_charged_cents=submission.amount_charged_cents,
                comment=submission.comment,
                document_ids=[f.id for f in files],
                submitted_at=now,
            ),
            key=str(submission.member_id),
            producer=PRODUCER,
        )
    submission.updated_at = now
    session.add(submission)
