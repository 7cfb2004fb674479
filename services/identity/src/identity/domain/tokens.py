"""Single-use link tokens: 256 random bits given to the member, only a hash kept."""

from __future__ import annotations

import hashlib
import secrets


def new_link_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
