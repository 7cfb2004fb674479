"""identity's tables (created by migrations/, mapped here)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary
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


class MemberProfile(SQLModel, table=True):
    """Postal address and phone (migrations/0003); an address is whole or absent."""

    __tablename__ = "member_profiles"

    member_id: uuid.UUID = Field(primary_key=True, foreign_key="members.id")
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    phone: str | None = None
    updated_at: datetime = _tz()


class CommunicationPreferences(SQLModel, table=True):
    __tablename__ = "communication_preferences"

    account_id: uuid.UUID = Field(primary_key=True, foreign_key="accounts.id")
    reimbursement_alerts: bool = True
    updated_at: datetime = _tz()


class EmailChangeToken(SQLModel, table=True):
    __tablename__ = "email_change_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    account_id: uuid.UUID = Field(foreign_key="accounts.id")
    new_email: str
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)
    revoked_at: datetime | None = _tz(nullable=True)


class AccountThrottle(SQLModel, table=True):
    __tablename__ = "account_throttle"

    id: int | None = Field(default=None, primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id")
    action: str
    at: datetime = _tz()


class SessionFamily(SQLModel, table=True):
    """One log-in: the refresh tokens that rotate from it share this family."""

    __tablename__ = "session_families"

    id: uuid.UUID = Field(primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    last_used_at: datetime = _tz()
    revoked_at: datetime | None = _tz(nullable=True)
    revoked_reason: str | None = None


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    family_id: uuid.UUID = Field(foreign_key="session_families.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)


class LoginThrottle(SQLModel, table=True):
    __tablename__ = "login_throttles"

    key_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    consecutive_failures: int = 0
    last_failure_at: datetime | None = _tz(nullable=True)
    window_started_at: datetime | None = _tz(nullable=True)
    window_failures: int = 0
    blocked_until: datetime | None = _tz(nullable=True)


class PasswordResetToken(SQLModel, table=True):
    __tablename__ = "password_reset_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    account_id: uuid.UUID = Field(foreign_key="accounts.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)
    revoked_at: datetime | None = _tz(nullable=True)


class Agent(SQLModel, table=True):
    """A management-centre agent (migrations/0004): back-office staff, not a member."""

    __tablename__ = "agents"

    id: uuid.UUID = Field(primary_key=True)
    email: str
    email_key: str
    name: str
    password_hash: str | None = None
    totp_secret_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str
    created_at: datetime = _tz()
    activated_at: datetime | None = _tz(nullable=True)


class AgentPasswordToken(SQLModel, table=True):
    __tablename__ = "agent_password_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    agent_id: uuid.UUID = Field(foreign_key="agents.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)
    revoked_at: datetime | None = _tz(nullable=True)


class AgentSessionFamily(SQLModel, table=True):
    __tablename__ = "agent_session_families"

    id: uuid.UUID = Field(primary_key=True)
    agent_id: uuid.UUID = Field(foreign_key="agents.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    last_used_at: datetime = _tz()
    revoked_at: datetime | None = _tz(nullable=True)
    revoked_reason: str | None = None


class AgentRefreshToken(SQLModel, table=True):
    __tablename__ = "agent_refresh_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    family_id: uuid.UUID = Field(foreign_key="agent_session_families.id")
    created_at: datetime = _tz()
    expires_at: datetime = _tz()
    used_at: datetime | None = _tz(nullable=True)
