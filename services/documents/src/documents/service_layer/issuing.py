"""Issuing a document to a member: store the PDF, route it (online when e-courriers are on, else
queued for post), and publish DocumentIssued, all in the caller's transaction."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.pdf import RenderedPdf
from documents.adapters.tables import Document, Member
from documents.service_layer.context import PRODUCER, Documents
from shared.contracts.documents import DocumentIssued
from shared.platform.outbox import record_event

ONLINE = "online"
POST = "post"


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
    claim_id: uuid.UUID | None = None,
    publish: bool = True,
    document_id: uuid.UUID | None = None,
) -> Document:
    document_id = document_id or uuid.uuid4()
    key = f"issued/{member.member_id}/{document_id}.pdf"
    await docs.storage.put_bytes(key, pdf.data, "application/pdf")
    now = datetime.now(UTC)
    delivery = ONLINE if member.paperless else POST
    document = Document(
        id=document_id,
        member_id=member.member_id,
        contract_number=member.contract_number,
        kind=kind,
        title=title,
        file_name=file_name,
        media_type="application/pdf",
        size_bytes=len(pdf.data),
        sha256=hashlib.sha256(pdf.data).hexdigest(),
        storage_key=key,
        scan_status="clean",  # our own output
        period=period,
        pages=pdf.pages,
        delivery=delivery if publish else None,
        print_status="queued" if publish and delivery == POST else None,
        claim_id=claim_id,
        created_at=now,
    )
    session.add(document)
    if publish:
        await record_event(
            session,
            DocumentIssued(document_id=document_id, member_id=member.member_id, document_type=kind, title=title,
                           delivery=delivery, issued_at=now),
            key=str(member.member_id),
            producer=PRODUCER,
        )
    return document
