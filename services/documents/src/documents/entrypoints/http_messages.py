"""Messages to the management centre: the member's threads, and the back office's queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from documents.adapters.multipart import parse_streamed_form
from documents.entrypoints.http import DocumentsDep, FileOut, _file
from documents.service_layer import messages
from shared.platform.auth import CurrentAgent, CurrentMember
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/documents/messages", tags=["messages"])
backoffice = APIRouter(prefix="/api/v1/documents/backoffice/threads", tags=["documents back office"])


class MessageOut(BaseModel):
    id: uuid.UUID
    author: str = Field(description="member or agent")
    body: str
    created_at: datetime
    attachments: list[FileOut]


class ThreadOut(BaseModel):
    id: uuid.UUID
    subject: str
    subject_label: str
    status: str = Field(description="open, answered or closed")
    claim_id: uuid.UUID | None
    line_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    waiting_since: datetime = Field(description="The member's last message: the back-office queue's order")
    messages: list[MessageOut] | None = None


def _thread(thread, msgs=None, attachments=()) -> ThreadOut:
    out = ThreadOut(id=thread.id, subject=thread.subject_code, subject_label=messages.SUBJECTS.get(thread.subject_code, ""),
                    status=thread.status, claim_id=thread.claim_id, line_id=thread.line_id, created_at=thread.created_at,
                    updated_at=thread.updated_at, waiting_since=thread.last_member_message_at)
    if msgs is not None:
        out.messages = [MessageOut(id=m.id, author=m.author, body=m.body, created_at=m.created_at,
                                   attachments=[_file(a) for a in attachments if a.message_id == m.id]) for m in msgs]
    return out


def _message_form(*, with_subject: bool) -> dict:
    # The body must hold more than blanks (the service strips it); file types are read from the
    # bytes, which no schema can say (a 415 then).
    properties = {"body": {"type": "string", "minLength": 1, "maxLength": messages.MAX_BODY, "pattern": r"\S"},
                  "files": {"type": "array", "maxItems": 3, "items": {"type": "string", "format": "binary"}}}
    if with_subject:
        properties = {"subject": {"type": "string", "enum": list(messages.SUBJECTS)}, **properties}
    schema = {"type": "object", "required": ["subject", "body"] if with_subject else ["body"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


NEW_THREAD_FORM, REPLY_FORM = _message_form(with_subject=True), _message_form(with_subject=False)


async def _form(request: Request, docs):
    s = docs.settings
    return await parse_streamed_form(request, spool=s.spool, file_field="files", max_files=s.max_message_attachments,
                                     max_file_bytes=s.max_file_bytes, max_request_bytes=s.max_request_bytes)


@router.get("/subjects", summary="The subjects a message may have")
async def subjects() -> dict[str, str]:
    return messages.SUBJECTS


@router.post("", status_code=201, response_model=ThreadOut, openapi_extra=NEW_THREAD_FORM,
             responses=problem_responses(400, 409, 413, 415, 422), summary="Write to your management centre")
async def open_thread(request: Request, principal: CurrentMember, docs: DocumentsDep) -> ThreadOut:
    form = await _form(request, docs)
    try:
        thread = await messages.open_thread(docs, principal.member_id, form)
    finally:
        form.cleanup()
    return _thread(*await messages.thread_view(docs, thread.id, member_id=principal.member_id))


@router.get("", response_model=list[ThreadOut], summary="Your conversations, latest first")
async def list_threads(principal: CurrentMember, docs: DocumentsDep) -> list[ThreadOut]:
    return [_thread(t) for t in await messages.member_threads(docs, principal.member_id)]


@router.get("/{thread_id}", response_model=ThreadOut, responses=problem_responses(404), summary="One conversation")
async def get_thread(thread_id: uuid.UUID, principal: CurrentMember, docs: DocumentsDep) -> ThreadOut:
    return _thread(*await messages.thread_view(docs, thread_id, member_id=principal.member_id))


@router.post("/{thread_id}/replies", response_model=ThreadOut, status_code=201, openapi_extra=REPLY_FORM,
             responses=problem_responses(400, 404, 409, 413, 415, 422), summary="Reply in a conversation")
async def reply(thread_id: uuid.UUID, request: Request, principal: CurrentMember, docs: DocumentsDep) -> ThreadOut:
    form = await _form(request, docs)
    try:
        await messages.member_reply(docs, principal.member_id, thread_id, form)
    finally:
        form.cleanup()
    return _thread(*await messages.thread_view(docs, thread_id, member_id=principal.member_id))


class AgentReply(RequestBody):
    body: Annotated[str, Field(min_length=1, max_length=messages.MAX_BODY)]


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None = Field(description="Pass it as `cursor` for the next page; null on the last one")


@backoffice.get("", response_model=ThreadPage, responses=problem_responses(422),
                summary="Open conversations, the longest-waiting first (cursor-paged)")
async def queue(agent: CurrentAgent, docs: DocumentsDep,
                cursor: Annotated[str | None, Query(max_length=200, pattern="^[A-Za-z0-9_-]+$")] = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 50) -> ThreadPage:
    threads, next_cursor = await messages.queue(docs, agent.agent_id, cursor, limit)
    return ThreadPage(items=[_thread(t) for t in threads], next_cursor=next_cursor)


@backoffice.get("/{thread_id}", response_model=ThreadOut, responses=problem_responses(404), summary="One conversation")
async def agent_get(thread_id: uuid.UUID, agent: CurrentAgent, docs: DocumentsDep) -> ThreadOut:
    return _thread(*await messages.agent_view(docs, agent.agent_id, thread_id))


@backoffice.post("/{thread_id}/replies", response_model=ThreadOut, status_code=201,
                 responses=problem_responses(404, 409, 413, 422), summary="Answer the member (who is e-mailed)")
async def agent_reply(thread_id: uuid.UUID, body: AgentReply, agent: CurrentAgent, docs: DocumentsDep) -> ThreadOut:
    await messages.agent_reply(docs, agent.agent_id, thread_id, body.body)
    return _thread(*await messages.thread_view(docs, thread_id))


@backoffice.post("/{thread_id}/close", response_model=ThreadOut, responses=problem_responses(404), summary="Close a conversation")
async def agent_close(thread_id: uuid.UUID, agent: CurrentAgent, docs: DocumentsDep) -> ThreadOut:
    await messages.agent_close(docs, agent.agent_id, thread_id)
    return _thread(*await messages.thread_view(docs, thread_id))
