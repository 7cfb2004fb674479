"""Events published by documents on `documents.documents.v1` (key: the member id)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from shared.contracts.envelope import Event
from shared.contracts.topics import DOCUMENTS_DOCUMENTS


class InvoiceSubmitted(Event):
    """A member's uploaded invoice files were all scanned clean: claims opens a paper claim."""

    event_type = "documents.InvoiceSubmitted"
    topic = DOCUMENTS_DOCUMENTS

    submission_id: uuid.UUID
    member_id: uuid.UUID = Field(description="The member who uploaded")
    beneficiary_member_id: uuid.UUID
    beneficiary_membership_number: str
    contract_number: str
    care_type: str = Field(description="osteopathy, optics, dental, hearing, hospital, other…")
    care_date: date
    amount_charged_cents: int | None = None
    comment: str | None = None
    document_ids: list[uuid.UUID]
    submitted_at: datetime


class DocumentIssued(Event):
    """A document for the member is ready: e-mailed about (paperless) or queued for post."""

    event_type = "documents.DocumentIssued"
    topic = DOCUMENTS_DOCUMENTS

    document_id: uuid.UUID
    member_id: uuid.UUID
    document_type: str = Field(
        description="statement, monthly_statement, contribution_call, tax_certificate, card"
    )
    title: str = Field(description="French title, with no health detail")
    delivery: str = Field(description='"online" (e-courriers) or "post"')
    issued_at: datetime


class MessageAnswered(Event):
    """The management centre answered one of the member's message threads."""

    event_type = "documents.MessageAnswered"
    topic = DOCUMENTS_DOCUMENTS

    thread_id: uuid.UUID
    member_id: uuid.UUID
    subject_code: str
    answered_at: datetime
