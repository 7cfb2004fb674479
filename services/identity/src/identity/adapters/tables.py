"""identity's tables (created by migrations/, mapped here)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


def _tz(nullable: bool = False):
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Member(SQLModel, table=True):
    __tablename__ = "members"

    id: uuid.UUID = Field(primary_key=True)
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    last_name_key: str
    first_name_key: str
    birth_date: date
    updated_at: datetime = _tz()


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID = Field(foreign_key="members.id")
    email: str
    password_hash: str
    status: str
    paperless: bool
    terms_version: str
    terms_accepted_at: datetime = _tz()
    created_at: datetime = _tz()
    activated_at: datetime | None = _tz(nullable=True)


class ActivationToken(SQLModel, table=True):
    __tablename__ = "activation_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    account_id: uuid.UUID = Field(foreign_key="accounts.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)
    revoked_at: datetime | None = _tz(nullable=True)
