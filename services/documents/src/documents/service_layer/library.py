"""The member's documents: list, metadata, and short-lived signed download links."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import and_, or_
from sqlmodel import select

from documents.adapters.tables import Document, Member
from documents.domain import links
from documents.service_layer import issuing, rendering
from documents.service_layer.context import Documents
from shared.platform.problems import ProblemError, field_error

# Kinds a member of the contract other than the owner may read (the contract's card).
CONTRACT_KINDS = ("card_pdf", "card_png")


def not_found() -> ProblemError:
    return ProblemError(404, "not_found", "Document introuvable", "Ce document n'existe pas ou ne vous est pas destiné.")


def not_ready(document: Document) -> ProblemError:
    if document.scan_status == "pending":
        return ProblemError(409, "scan_pending", "Vérification en cours",
                            "Ce fichier est en cours de vérification antivirus : réessayez dans quelques instants.")
    return ProblemError(409, "quarantined", "Fichier bloqué",
                        "Ce fichier a été bloqué par notre antivirus et mis en quarantaine : il ne peut pas être téléchargé.")


def readable_by(document: Document, member: Member | None, member_id: uuid.UUID) -> bool:
    if document.member_id == member_id:
        return True
    return (document.kind in CONTRACT_KINDS and member is not None and member.contract_number is not None
            and document.contract_number == member.contract_number)


def encode_cursor(stamp: datetime, ident: uuid.UUID) -> str:
    """Where a keyset page ends: the last row's (timestamp, id), opaque to clients."""
    raw = f"{stamp.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(document: Document) -> str:
    return encode_cursor(document.created_at, document.id)


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except Exception as exc:
        raise ProblemError(422, "validation_failed", "Paramètre invalide",
                           errors=[field_error("cursor", "invalid_cursor", "Ce curseur n'est pas valide.")]) from exc


def parse_period(period: str) -> tuple[date, date]:
    """"2026" or "2026-03" → [start, end)."""
    try:
        if len(period) == 4:
            year = int(period)
            return date(year, 1, 1), date(year + 1, 1, 1)
        year, month = (int(p) for p in period.split("-"))
        start = date(year, month, 1)
        return start, date(year + (month == 12), month % 12 + 1, 1)
    except ValueError as exc:
        raise ProblemError(422, "validation_failed", "Paramètre invalide",
                           errors=[field_error("period", "invalid_period", "Période attendue : AAAA ou AAAA-MM.")]) from exc


@dataclass
class Page:
    items: list[Document]
    next_cursor: str | None


async def list_documents(docs: Documents, member_id: uuid.UUID, *, kind: str | None, period: str | None,
                         cursor: str | None, limit: int) -> Page:
    query = select(Document).where(Document.member_id == member_id, Document.kind.not_in(CONTRACT_KINDS))
    if kind:
        query = query.where(Document.kind == kind)
    if period:
        start, end = parse_period(period)
        query = query.where(Document.created_at >= datetime(start.year, start.month, start.day, tzinfo=UTC),
                            Document.created_at < datetime(end.year, end.month, end.day, tzinfo=UTC))
    if cursor:
        stamp, ident = parse_cursor(cursor)
        query = query.where(or_(Document.created_at < stamp, and_(Document.created_at == stamp, Document.id < ident)))
    query = query.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit + 1)
    async with docs.db.transaction() as session:
        rows = list(await session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _cursor(rows[-1]) if more and rows else None)


async def get_document(docs: Documents, member_id: uuid.UUID, document_id: uuid.UUID) -> Document:
    async with docs.db.transaction() as session:
        document = await session.get(Document, document_id)
        member = await session.get(Member, member_id)
    if document is None or not readable_by(document, member, member_id):
        raise not_found()
    return document


def link_for(docs: Documents, member_id: uuid.UUID, document_id: uuid.UUID) -> tuple[str, datetime]:
    expires = int(time.time()) + docs.settings.link_ttl_s
    token = links.sign(links.LinkGrant(document_id, member_id, expires), docs.link_key)
    return f"/api/v1/documents/downloads/{token}", datetime.fromtimestamp(expires, UTC)


async def create_link(docs: Documents, member_id: uuid.UUID, document_id: uuid.UUID) -> tuple[str, datetime]:
    document = await get_document(docs, member_id, document_id)
    if document.scan_status != "clean":
        raise not_ready(document)
    return link_for(docs, member_id, document_id)


async def open_link(docs: Documents, token: str) -> Document:
    try:
        grant = links.verify(token, docs.link_key, int(time.time()))
    except links.ExpiredLink:
        raise ProblemError(410, "link_expired", "Lien expiré",
                           "Ce lien de téléchargement a expiré : demandez-en un nouveau depuis votre espace.") from None
    except links.BadLink:
        raise ProblemError(404, "not_found", "Lien invalide", "Ce lien de téléchargement n'est pas valide.") from None
    document = await get_document(docs, grant.member_id, grant.document_id)
    if document.scan_status != "clean":
        raise not_ready(document)
    if document.render_status == issuing.PENDING:  # asked for before the renderer got to it
        await rendering.render_now(docs, document.id)
        document = await get_document(docs, grant.member_id, grant.document_id)
    return document
