"""Messages to the management centre: threads opened by the member (or by a dispute from
claims), answered and closed by agents (each action audited). Attachments follow the upload
rules and the antivirus: they are served only once clean."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, or_
from sqlmodel import select

from documents.adapters.multipart import StreamedForm
from documents.adapters.tables import Document, Thread, ThreadMessage
from documents.domain.uploads import sniff
from documents.service_layer import audit, members
from documents.service_layer.context import PRODUCER, Documents
from documents.service_layer.library import encode_cursor, parse_cursor
from documents.service_layer.uploads import check_file_types, unknown_member
from shared.contracts.claims import ReimbursementDisputed
from shared.contracts.documents import MessageAnswered
from shared.platform.inputs import storable
from shared.platform.outbox import record_event
from shared.platform.problems import ProblemError, field_error

SUBJECTS = {
    "reimbursement": "Question sur un remboursement",
    "reimbursement_dispute": "Contestation d'un remboursement",
    "contract": "Mon contrat et mes garanties",
    "contribution": "Mes cotisations",
    "card": "Ma carte de tiers payant",
    "address": "Changement de situation",
    "other": "Autre demande",
}
OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
MAX_BODY = 5000


def _not_found() -> ProblemError:
    return ProblemError(404, "not_found", "Message introuvable", "Cette conversation n'existe pas.")


def _check_body(body: str | None) -> str:
    text = (body or "").strip()
    if not text:
        raise ProblemError(422, "validation_failed", "Message invalide", errors=[field_error("body", "required", "Écrivez votre message.")])
    if len(text) > MAX_BODY or not storable(text):
        raise ProblemError(422, "validation_failed", "Message invalide",
                           errors=[field_error("body", "too_long" if len(text) > MAX_BODY else "invalid_characters",
                                               f"Le message ne doit pas dépasser {MAX_BODY} caractères." if len(text) > MAX_BODY
                                               else "Ce champ contient des caractères non autorisés.")])
    return text


async def _attach(docs: Documents, session, member_id, contract_number, thread_id, message_id, form: StreamedForm, now) -> list[Document]:
    attached = []
    for f in form.files:
        kind = sniff(f.head)
        doc_id = uuid.uuid4()
        key = f"messages/{member_id}/{doc_id}.{kind.extension}"
        document = Document(id=doc_id, member_id=member_id, contract_number=contract_number, kind="message_attachment",
                            title="Pièce jointe à un message", file_name=f.name, media_type=kind.media_type, size_bytes=f.size,
                            sha256=f.sha256, storage_key=key, scan_status="pending", thread_id=thread_id,
                            message_id=message_id, created_at=now)
        session.add(document)
        await docs.storage.put_file(key, f.path, kind.media_type)
        attached.append(document)
    return attached


async def open_thread(docs: Documents, member_id: uuid.UUID, form: StreamedForm) -> Thread:
    subject = (form.fields.get("subject") or "").strip()
    if subject not in SUBJECTS:
        raise ProblemError(422, "validation_failed", "Message invalide",
                           errors=[field_error("subject", "invalid_choice", "Choisissez un objet dans la liste.")])
    body = _check_body(form.fields.get("body"))
    check_file_types(form.files)
    now = datetime.now(UTC)
    async with docs.db.transaction() as session:
        member = await members.get(session, member_id)
        if member is None or not member.contract_number:
            raise unknown_member()
        thread = Thread(id=uuid.uuid4(), member_id=member_id, subject_code=subject, status=OPEN, created_at=now,
                        updated_at=now, last_member_message_at=now)
        session.add(thread)
        await session.flush()
        message = ThreadMessage(id=uuid.uuid4(), thread_id=thread.id, author="member", body=body, created_at=now)
        session.add(message)
        await session.flush()
        await _attach(docs, session, member_id, member.contract_number, thread.id, message.id, form, now)
    docs.scan_wake.set()
    return thread


async def member_reply(docs: Documents, member_id: uuid.UUID, thread_id: uuid.UUID, form: StreamedForm) -> Thread:
    body = _check_body(form.fields.get("body"))
    check_file_types(form.files)
    now = datetime.now(UTC)
    async with docs.db.transaction() as session:
        thread = await session.get(Thread, thread_id, with_for_update=True)
        if thread is None or thread.member_id != member_id:
            raise _not_found()
        if thread.status == CLOSED:
            raise ProblemError(409, "thread_closed", "Conversation close",
                               "Cette conversation est close : écrivez un nouveau message.")
        message = ThreadMessage(id=uuid.uuid4(), thread_id=thread.id, author="member", body=body, created_at=now)
        session.add(message)
        await session.flush()
        member = await members.get(session, member_id)
        await _attach(docs, session, member_id, member.contract_number if member else None, thread.id, message.id, form, now)
        thread.status, thread.updated_at, thread.last_member_message_at = OPEN, now, now
        session.add(thread)
    docs.scan_wake.set()
    return thread


async def dispute_opened(session, event: ReimbursementDisputed) -> None:
    """claims' ReimbursementDisputed opens a thread on the member's behalf, tied to the line."""
    existing = (await session.exec(select(Thread).where(Thread.dispute_id == event.dispute_id))).first()
    if existing is not None:
        return
    now = datetime.now(UTC)
    thread = Thread(id=uuid.uuid4(), member_id=event.member_id, subject_code="reimbursement_dispute", status=OPEN,
                    claim_id=event.claim_id, line_id=event.line_id, dispute_id=event.dispute_id, created_at=now,
                    updated_at=now, last_member_message_at=event.disputed_at)
    session.add(thread)
    await session.flush()
    body = (f"Je ne reconnais pas le remboursement « {event.act_label} » du {event.care_date:%d/%m/%Y}."
            + (f"\n{event.comment}" if event.comment else ""))
    session.add(ThreadMessage(id=uuid.uuid4(), thread_id=thread.id, author="member", body=body[:MAX_BODY], created_at=now))


async def thread_view(docs: Documents, thread_id: uuid.UUID, *, member_id: uuid.UUID | None = None):
    async with docs.db.transaction() as session:
        thread = await session.get(Thread, thread_id)
        if thread is None or (member_id is not None and thread.member_id != member_id):
            raise _not_found()
        messages = list(await session.exec(select(ThreadMessage).where(ThreadMessage.thread_id == thread_id)
                                           .order_by(ThreadMessage.created_at)))
        attachments = list(await session.exec(select(Document).where(Document.thread_id == thread_id)))
    return thread, messages, attachments


async def member_threads(docs: Documents, member_id: uuid.UUID) -> list[Thread]:
    async with docs.db.transaction() as session:
        return list(await session.exec(select(Thread).where(Thread.member_id == member_id).order_by(Thread.updated_at.desc()).limit(100)))


async def queue(docs: Documents, agent_id: uuid.UUID, cursor: str | None = None,
                limit: int = 50) -> tuple[list[Thread], str | None]:
    """Open threads, the longest-waiting first, a page at a time; the cursor for the next page."""
    query = select(Thread).where(Thread.status == OPEN)
    if cursor:
        stamp, ident = parse_cursor(cursor)
        query = query.where(or_(Thread.last_member_message_at > stamp,
                                and_(Thread.last_member_message_at == stamp, Thread.id > ident)))
    async with docs.db.transaction() as session:
        threads = list(await session.exec(query.order_by(Thread.last_member_message_at, Thread.id).limit(limit + 1)))
        page = threads[:limit]
        audit.record(session, agent_id, "queue_viewed", "queue", uuid.UUID(int=0), count=len(page))
    last = page[-1] if len(threads) > limit else None
    return page, encode_cursor(last.last_member_message_at, last.id) if last else None


async def agent_reply(docs: Documents, agent_id: uuid.UUID, thread_id: uuid.UUID, body: str) -> Thread:
    text = _check_body(body)
    now = datetime.now(UTC)
    async with docs.db.transaction() as session:
        thread = await session.get(Thread, thread_id, with_for_update=True)
        if thread is None:
            raise _not_found()
        if thread.status == CLOSED:
            raise ProblemError(409, "thread_closed", "Conversation close", "Cette conversation est close.")
        session.add(ThreadMessage(id=uuid.uuid4(), thread_id=thread.id, author="agent", agent_id=agent_id, body=text, created_at=now))
        thread.status, thread.updated_at = ANSWERED, now
        session.add(thread)
        audit.record(session, agent_id, "thread_answered", "thread", thread.id)
        await record_event(session, MessageAnswered(thread_id=thread.id, member_id=thread.member_id,
                                                    subject_code=thread.subject_code, answered_at=now),
                           key=str(thread.member_id), producer=PRODUCER)
    return thread


async def agent_close(docs: Documents, agent_id: uuid.UUID, thread_id: uuid.UUID) -> Thread:
    async with docs.db.transaction() as session:
        thread = await session.get(Thread, thread_id, with_for_update=True)
        if thread is None:
            raise _not_found()
        thread.status, thread.updated_at = CLOSED, datetime.now(UTC)
        session.add(thread)
        audit.record(session, agent_id, "thread_closed", "thread", thread.id)
    return thread


async def agent_view(docs: Documents, agent_id: uuid.UUID, thread_id: uuid.UUID):
    view = await thread_view(docs, thread_id)
    async with docs.db.transaction() as session:
        audit.record(session, agent_id, "thread_viewed", "thread", thread_id)
    return view
