"""The browser session, backend-for-frontend style: the member's access and refresh tokens live
only in an AES-256-GCM encrypted, HttpOnly cookie that page JavaScript can never read, and the
CSRF token every form carries is derived from a second HttpOnly cookie.

Cookie contents are opaque to the browser: base64url(key id ‖ nonce ‖ ciphertext+tag), with the
cookie's name as associated data (a value cannot be moved from one cookie to another)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from web.config import WebSettings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieCipher:
    """AES-GCM with a list of keys: the first encrypts, any decrypts (so a key can be rotated)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError("WEB_SESSION_KEYS: each key must be 32 bytes, urlsafe base64")
        self.keys = [(hashlib.sha256(k).digest()[:4], AESGCM(k)) for k in keys]
        # Derived, separate key for CSRF tokens (never the encryption key itself).
        self.mac_key = hashlib.sha256(b"espace-web-csrf|" + keys[0]).digest()

    @classmethod
    def from_settings(cls, settings: WebSettings) -> CookieCipher:
        if settings.session_keys is None:
            return cls([os.urandom(32)])
        return cls([_unb64(k.strip()) for k in settings.session_keys.get_secret_value().split(",") if k.strip()])

    def seal(self, name: str, payload: dict) -> str:
        kid, aead = self.keys[0]
        nonce = os.urandom(12)
        data = json.dumps(payload, separators=(",", ":")).encode()
        return _b64(kid + nonce + aead.encrypt(nonce, data, name.encode()))

    def open(self, name: str, value: str | None) -> dict | None:
        if not value or len(value) > 4096:
            return None
        try:
            raw = _unb64(value)
        except (ValueError, TypeError):
            return None
        kid, nonce, box = raw[:4], raw[4:16], raw[16:]
        for key_id, aead in self.keys:
            if hmac.compare_digest(key_id, kid):
                try:
                    return json.loads(aead.decrypt(nonce, box, name.encode()))
                except (InvalidTag, ValueError):
                    return None
        return None

    def csrf_token(self, secret: str) -> str:
        return _b64(hmac.new(self.mac_key, secret.encode(), hashlib.sha256).digest())

    def csrf_valid(self, secret: str | None, token: str | None) -> bool:
        if not secret or not token:
            return False
        return hmac.compare_digest(self.csrf_token(secret), token)


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class MemberSession:
    """What the session cookie holds. `access_exp` is the access token's expiry (epoch seconds),
    kept beside it so web knows when to refresh without decoding the token."""

    access_token: str
    refresh_token: str
    access_exp: float
    refresh_exp: float
    terms_required: bool = False
    terms_version: str = ""

    def to_payload(self) -> dict:
        return {
            "a": self.access_token,
            "r": self.refresh_token,
            "x": int(self.access_exp),
            "y": int(self.refresh_exp),
            "t": self.terms_required,
            "v": self.terms_version,
        }

    @classmethod
    def from_payload(cls, data: dict | None) -> MemberSession | None:
        if not data:
            return None
        try:
            return cls(str(data["a"]), str(data["r"]), float(data["x"]), float(data["y"]), bool(data.get("t")),
                       str(data.get("v", "")))
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def from_api(cls, body: dict) -> MemberSession:
        now = time.time()
        return cls(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            access_exp=now + int(body["expires_in"]),
            refresh_exp=now + int(body["refresh_expires_in"]),
            terms_required=bool(body.get("terms_acceptance_required")),
            terms_version=str(body.get("terms_version", "")),
        )

    def needs_refresh(self, margin_s: float = 30.0) -> bool:
        return time.time() + margin_s >= self.access_exp
