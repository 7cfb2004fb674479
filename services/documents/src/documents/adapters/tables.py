"""documents's tables (created by migrations/, mapped here)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class Member(SQLModel, table=True):
    __tablename__ = "members"

    member_id: uuid.UUID = Field(primary_key=True)
    account_id: uuid.UUID
    paperless: bool
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
