"""Encryption at rest of the agents' TOTP secrets (AES-256-GCM).

Unlike a password, a TOTP secret must be read back to check a code, so it cannot be hashed; it
is encrypted under a key the database does not hold, bound (as associated data) to the agent's
id so a row's secret cannot be copied onto another agent.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class SecretBox:
    def __init__(self, key_material: bytes) -> None:
        # Any length in, 256 bits out.
        self._aead = AESGCM(hashlib.sha256(b"espace-identity-agent-totp\x00" + key_material).digest())

    def seal(self, plaintext: str, owner: uuid.UUID) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), owner.bytes)

    def open(self, sealed: bytes, owner: uuid.UUID) -> str:
        """Raises cryptography's InvalidTag when the key or the owner is not the right one."""
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], owner.bytes).decode()
