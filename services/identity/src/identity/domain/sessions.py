"""Refresh-token rules (pure): what a presented refresh token gets.

A log-in opens a *family*. Each refresh spends the presented token (it is kept, marked used)
and gives a new one in the same family. A token presented a second time means two parties hold
it (one of them stole it): the whole family is revoked, the thief's copy and the member's alike,
and the member logs in again. A family dies at its absolute expiry however often it rotates;
with an idle lifetime, a token not used in time expires too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class RefreshOutcome(enum.StrEnum):
    ROTATE = "rotate"
    UNKNOWN = "refresh_token_invalid"
    REVOKED = "session_revoked"
    REUSED = "refresh_token_reused"
    EXPIRED = "refresh_token_expired"


@dataclass(frozen=True)
class PresentedToken:
    used_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True)
class Family:
    expires_at: datetime
    revoked_at: datetime | None
    account_active: bool = True


def judge_refresh(token: PresentedToken | None, family: Family | None, now: datetime) -> RefreshOutcome:
    if token is None or family is None:
        return RefreshOutcome.UNKNOWN
    if family.revoked_at is not None or not family.account_active:
        return RefreshOutcome.REVOKED
    if token.used_at is not None:
        return RefreshOutcome.REUSED  # the caller revokes the family
    if now >= family.expires_at or now >= token.expires_at:
        return RefreshOutcome.EXPIRED
    return RefreshOutcome.ROTATE


def family_expiry(opened_at: datetime, absolute: timedelta) -> datetime:
    return opened_at + absolute


def token_expiry(family_expires_at: datetime, issued_at: datetime, idle: timedelta | None) -> datetime:
    """A refresh token never outlives its family; with an idle lifetime it dies sooner if unused."""
    if idle is None:
        return family_expires_at
    return min(family_expires_at, issued_at + idle)


def session_usable(family: Family | None, now: datetime) -> bool:
    """Whether an access token issued in this family still speaks for a live session."""
    return family is not None and family.revoked_at is None and family.account_active and now < family.expires_at
