"""Issuing a document to a member: store the PDF, route it (online when e-courriers are on, else
queued for post), and publish DocumentIssued, all in the caller's transaction.

What an event asks for (a statement, the card) is first recorded as a `pending` document with
no file; the renderer (service_layer/rendering.py) renders it later as a `RenderJob` and only
then stores it and publishes DocumentIssued, so an event always points at a downloadable file."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.pdf import RenderedPdf
from documents.adapters.tables import Document, Member
from documents.service_layer.context import PRODUCER, Documents
from shared.contracts.documents import DocumentIssued
from shared.platform.outbox import record_event

ONLINE = "online"
POST = "post"
PENDING = "pending"
RENDERED = "rendered"


@dataclass
class RenderJob:
    """One pending render: `render` runs in the PDF workers (touches no session, so several run
    at once); `finish` stores the result and stamps the rows, in the claiming transaction."""

    document: Document  # the row whose render_status and attempts track the work
    render: Callable[[], Awaitable[Any]]
    finish: Callable[[Any], Awaitable[None]]


def recipient(member: Member) -> dict:
    return {"name": member.full_name, "address": member.postal_address}


def context_for(docs: Documents, member: Member, *, title: str, reference: str, **extra) -> dict:
    return {
        "title": title,
        "reference": reference,
        "issued_on": datetime.now(UTC).date(),
        "mutuelle": docs.mutuelle(),
        "recipient": recipient(member),
        **extra,
    }


async def store(docs: Documents, document: Document, data: bytes, key: str, pages: int | None) -> None:
    """The file of `document`, stored under `key` (a retried render writes the same key again)."""
    await docs.storage.put_bytes(key, data, document.media_type)
    stamp(document, data, key, pages)


def stamp(document: Document, data: bytes, key: str, pages: int | None) -> None:
    """`document` points at its stored file from now on (the file must be stored already)."""
    document.storage_key = key
    document.size_bytes = len(data)
    document.sha256 = hashlib.sha256(data).hexdigest()
    document.pages = pages
    if document.render_status == PENDING:
        document.render_status = RENDERED
        document.render_source = None


def issued_key(document: Document) -> str:
    return f"issued/{document.member_id}/{document.id}.pdf"


async def deliver(session: AsyncSession, document: Document, member: Member) -> None:
    """Routes a stored document (as chosen when it was recorded, else by the member's choice
    now) and announces it (DocumentIssued, in the same transaction)."""
    now = datetime.now(UTC)
    delivery = document.delivery or (ONLINE if member.paperless else POST)
    document.delivery = delivery
    document.print_status = "queued" if delivery == POST else None
    session.add(document)
    await record_event(
        session,
        DocumentIssued(document_id=document.id, member_id=document.member_id, document_type=document.kind,
                       title=document.title, delivery=delivery, issued_at=now),
        key=str(document.member_id),
        producer=PRODUCER,
    )


async def issue(
    docs: Documents,
    session: AsyncSession,
    member: Member,
    pdf: RenderedPdf,
    *,
    kind: str,
    title: str,
    file_name: str,
    period: date | None = None,
) -> Document:
    """A document rendered by the caller (a letter, in its request): stored and delivered now."""
    document = Document(
        id=uuid.uuid4(),
        member_id=member.member_id,
        contract_number=member.contract_number,
        kind=kind,
        title=title,
        file_name=file_name,
        media_type="application/pdf",
        scan_status="clean",  # our own output
        period=period,
        created_at=datetime.now(UTC),
    )
    await store(docs, document, pdf.data, issued_key(document), pdf.pages)
    await deliver(session, document, member)
    return document
