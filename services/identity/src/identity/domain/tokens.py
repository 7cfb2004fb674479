"""Single-use link tokens: 256 random bits given to the member, only a hash kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol


def new_link_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class LinkRow(Protocol):
    used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime


def link_refusal(link: LinkRow | None, now: datetime) -> str | None:
    """Why a presented link cannot be used ("unknown", "used", "revoked", "expired"), or None.
    The same rules for activation, password-reset and e-mail-change links."""
    if link is None:
        return "unknown"
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    return None
