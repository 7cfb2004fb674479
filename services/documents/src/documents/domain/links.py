"""Signed download links: a token naming one document for one member until a deadline,
signed with HMAC-SHA256. The URL carries no bearer token; the signature is the authorisation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkGrant:
    document_id: uuid.UUID
    member_id: uuid.UUID
    expires_at: int  # unix seconds


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: LinkGrant, key: bytes) -> str:
    body = grant.document_id.bytes + grant.member_id.bytes + grant.expires_at.to_bytes(8, "big")
    mac = hmac.new(key, b"espace-download-v1|" + body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


class BadLink(Exception):
    pass


class ExpiredLink(Exception):
    pass


def verify(token: str, key: bytes, now: int) -> LinkGrant:
    try:
        body_text, mac_text = token.split(".", 1)
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, TypeError) as exc:
        raise BadLink from exc
    if len(body) != 40:
        raise BadLink
    expected = hmac.new(key, b"espace-download-v1|" + body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise BadLink
    grant = LinkGrant(uuid.UUID(bytes=body[:16]), uuid.UUID(bytes=body[16:32]), int.from_bytes(body[32:], "big"))
    if now >= grant.expires_at:
        raise ExpiredLink
    return grant
