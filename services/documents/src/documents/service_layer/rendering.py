"""The background renderer: what the consumers recorded as `pending` (statements, cards) is
rendered here, a few rows at a time, in the PDF worker processes. Rows are claimed with
FOR UPDATE SKIP LOCKED (replicas share the work), rendered, stored, stamped with their size,
digest and key, and (statements) announced with DocumentIssued in the same transaction: a
render killed halfway rolls back and is redone; the file it may have written is overwritten
then (same key) and served by nobody until the stamp commits.

A render that fails is retried later (render_after, growing), without holding up the others.
A member asking for a pending file (its download, the card) renders it at once (`render_now`);
the renderer then finds it done."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.tables import Card, Document
from documents.service_layer import cards, issuing, statements
from documents.service_layer.context import Documents
from shared.platform.problems import ProblemError

log = logging.getLogger(__name__)


async def render_loop(docs: Documents) -> None:
    backoff = 0.2
    while True:
        try:
            rendered = await render_pending(docs)
            backoff = 0.2
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("render pass failed, will retry", extra={"error_type": type(exc).__name__, "retry_in_s": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        if rendered:
            continue
        docs.render_wake.clear()
        try:
            await asyncio.wait_for(docs.render_wake.wait(), timeout=docs.settings.render_poll_seconds)
        except TimeoutError:
            pass


def _due(query, now: datetime):
    return query.where(or_(Document.render_after.is_(None), Document.render_after <= now))


async def render_pending(docs: Documents) -> int:
    """One pass: up to `render_batch` cards, then as many statements. The rows attempted."""
    now = datetime.now(UTC)
    limit = docs.settings.render_batch
    attempted = 0
    async with docs.db.transaction() as session:
        claimed = list(await session.exec(
            _due(cards.pending_query(), now).limit(limit).with_for_update(of=Card, skip_locked=True)))
        jobs = [job for card in claimed if (job := await cards.render_job(docs, session, card)) is not None]
        attempted += await _run(docs, session, jobs)
    async with docs.db.transaction() as session:
        claimed = list(await session.exec(_due(
            select(Document).where(Document.render_status == issuing.PENDING, Document.kind == "statement"), now)
            .order_by(Document.created_at).limit(limit).with_for_update(skip_locked=True)))
        jobs = [await statements.render_job(docs, session, document) for document in claimed]
        attempted += await _run(docs, session, jobs)
    return attempted


async def _run(docs: Documents, session: AsyncSession, jobs: list[issuing.RenderJob]) -> int:
    # The renders run side by side in the workers; the session is used by one of them at a time.
    results = await asyncio.gather(*(job.render() for job in jobs), return_exceptions=True)
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            _failed(docs, session, job.document, result)
            continue
        try:
            await job.finish(result)  # stores first, then stamps: a refused file changes no row
        except Exception as exc:  # the storage refused it: this one waits, the others go on
            _failed(docs, session, job.document, exc)
    return len(jobs)


def _failed(docs: Documents, session: AsyncSession, document: Document, exc: BaseException) -> None:
    s = docs.settings
    document.render_attempts += 1
    delay = min(s.render_retry_base_seconds * 2 ** (document.render_attempts - 1), s.render_retry_max_seconds)
    document.render_after = datetime.now(UTC) + timedelta(seconds=delay)
    session.add(document)
    log.warning("render failed, will retry", extra={"document_id": str(document.id), "kind": document.kind,
                                                    "attempt": document.render_attempts, "retry_in_s": delay,
                                                    "error_type": type(exc).__name__})


def unavailable() -> ProblemError:
    return ProblemError(503, "document_unavailable", "Document en préparation",
                        "Ce document est en cours de préparation : réessayez dans quelques instants.",
                        headers={"Retry-After": "5"})


async def render_now(docs: Documents, document_id: uuid.UUID) -> bool:
    """A member wants the pending document `document_id` now: render it in this request
    (waiting for the renderer if it has the row: then it is done). False when it was not pending."""
    async with docs.db.transaction() as session:
        document = await session.get(Document, document_id)
        if document is None or document.render_status != issuing.PENDING:
            return False
        if document.kind in ("card_pdf", "card_png"):
            card = await cards.card_of(session, document)
            card = await session.get(Card, card.id, with_for_update=True, populate_existing=True) if card else None
            job = await cards.render_job(docs, session, card) if card is not None else None
        else:
            document = await session.get(Document, document_id, with_for_update=True, populate_existing=True)
            job = await statements.render_job(docs, session, document) if document.render_status == issuing.PENDING else None
        if job is None:  # the renderer did it while this waited for the row
            return True
        try:
            result = await job.render()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("render on demand failed", extra={"document_id": str(document_id), "error_type": type(exc).__name__})
            raise unavailable() from exc
        await job.finish(result)
    return True


async def current_card(docs: Documents, member_id: uuid.UUID) -> Card:
    """The member's current card, its files rendered (now, if the renderer has not yet)."""
    card = await cards.card_for(docs, member_id)
    if await render_now(docs, card.pdf_document_id):
        card = await cards.card_for(docs, member_id)  # as rendered: a pending card may change in place
    return card
