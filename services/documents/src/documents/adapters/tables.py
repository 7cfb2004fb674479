"""documents's tables (created by migrations/, mapped here)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Member(SQLModel, table=True):
    __tablename__ = "members"

    member_id: uuid.UUID = Field(primary_key=True)
    account_id: uuid.UUID | None = None
    paperless: bool = True
    registered_at: datetime | None = _ts()
    membership_number: str | None = None
    contract_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    plan_code: str | None = None
    role: str | None = None
    coverage_start: date | None = None
    coverage_end: date | None = None
    postal_address: dict | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    enrolled_at: datetime | None = _ts()

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Submission(SQLModel, table=True):
    __tablename__ = "submissions"

    id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID
    beneficiary_member_id: uuid.UUID
    beneficiary_membership_number: str
    contract_number: str
    care_type: str
    care_date: date
    amount_charged_cents: int | None = None
    comment: str | None = None
    status: str
    status_message: str
    claim_id: uuid.UUID | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    submitted_at: datetime | None = _ts()


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID
    contract_number: str | None = None
    kind: str
    title: str
    file_name: str
    media_type: str
    size_bytes: int | None = None  # None while its render is pending (render_status)
    sha256: str | None = None
    storage_key: str | None = None
    scan_status: str
    scan_detail: str | None = None
    scanned_at: datetime | None = _ts()
    period: date | None = None
    pages: int | None = None
    delivery: str | None = None
    print_status: str | None = None
    printed_at: datetime | None = _ts()
    submission_id: uuid.UUID | None = Field(default=None, foreign_key="submissions.id")
    thread_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    claim_id: uuid.UUID | None = None
    replaced_at: datetime | None = _ts()
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    render_status: str | None = None
    render_source: dict | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    render_attempts: int = 0
    render_after: datetime | None = _ts()


class AgentAction(SQLModel, table=True):
    __tablename__ = "agent_actions"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: uuid.UUID
    action: str
    target_type: str
    target_id: uuid.UUID
    detail: dict = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Card(SQLModel, table=True):
    __tablename__ = "cards"

    id: uuid.UUID = Field(primary_key=True)
    contract_number: str
    version: int
    holder_member_id: uuid.UUID
    valid_from: date
    valid_to: date
    content: dict = Field(sa_column=Column(JSONB, nullable=False))
    payload: str
    pdf_document_id: uuid.UUID
    png_document_id: uuid.UUID
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    replaced_at: datetime | None = _ts()


class Thread(SQLModel, table=True):
    __tablename__ = "threads"

    id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID
    subject_code: str
    status: str
    claim_id: uuid.UUID | None = None
    line_id: uuid.UUID | None = None
    dispute_id: uuid.UUID | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_member_message_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ThreadMessage(SQLModel, table=True):
    __tablename__ = "thread_messages"

    id: uuid.UUID = Field(primary_key=True)
    thread_id: uuid.UUID = Field(foreign_key="threads.id")
    author: str
    agent_id: uuid.UUID | None = None
    body: str
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
