"""notifications' tables (created by migrations/, mapped here)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def _tz(nullable: bool = False):
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"

    id: uuid.UUID = Field(primary_key=True)
    source_event_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    message_id: str
    body_text: str | None = None
    body_html: str | None = None
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = _tz()
    created_at: datetime = _tz()
    sent_at: datetime | None = _tz(nullable=True)
    correlation_id: str | None = None
    trace_headers: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
