"""Ed25519 keys that sign access tokens, and the JWKS that publishes their public halves."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.platform.auth import AGENT_AUDIENCE, AGENT_ROLE, AUDIENCE, ISSUER

log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> SigningKey:
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        # RFC 7638 thumbprint: the kid follows the key, whoever loads it.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}, separators=(",", ":"))
        return cls(kid=_b64(hashlib.sha256(canonical.encode()).digest())[:16], private=private)


class KeyRing:
    """The first key signs; every key verifies, so a rotation keeps old tokens valid until expiry."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = keys
        self.by_kid = {k.kid: k.public for k in keys}

    @classmethod
    def load(cls, files: list[Path]) -> KeyRing:
        if not files:
            log.warning("no signing key configured: using a throwaway key (dev only)")
            return cls([SigningKey.from_private(Ed25519PrivateKey.generate())])
        keys = []
        for path in files:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            keys.append(SigningKey.from_private(private))
        return cls(keys)

    async def key_for(self, kid: str) -> Any | None:
        return self.by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self.keys]}

    def sign_access_token(
        self, *, account_id: uuid.UUID, member_id: uuid.UUID, ttl_seconds: int, session_id: uuid.UUID | None = None
    ) -> str:
        """`sid` names the session (refresh-token family) the token was issued in."""
        now = int(time.time())
        signer = self.keys[0]
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(account_id),
            "mid": str(member_id),
            # Said outright (verifiers also take a token without it as a member's).
            "role": "member",
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, signer.private, algorithm="EdDSA", headers={"kid": signer.kid})

    def sign_agent_token(self, *, agent_id: uuid.UUID, ttl_seconds: int, session_id: uuid.UUID | None = None) -> str:
        """A management-centre agent's token: its own audience and `role: agent`, so it is never
        taken for a member's (and a member's never for it)."""
        now = int(time.time())
        signer = self.keys[0]
        claims = {
            "iss": ISSUER,
            "aud": AGENT_AUDIENCE,
            "sub": str(agent_id),
            "role": AGENT_ROLE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, signer.private, algorithm="EdDSA", headers={"kid": signer.kid})
