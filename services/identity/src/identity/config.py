from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.platform.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    port: int = 8001
    database_url: SecretStr = SecretStr("postgresql+asyncpg://espace:espace@127.0.0.1:55432/identity")
    # Where the member's browser opens the activation link (the web front end).
    public_base_url: str = "http://127.0.0.1:8000"
    activation_ttl_hours: int = 24
    access_token_ttl_seconds: int = 900
    terms_version: str = "2026-01"
    # Ed25519 private keys (PEM), newest first: the first signs, all verify (key rotation).
    # In dev, when unset, a key is made at start-up and tokens die with the process.
    jwt_private_key_files: list[Path] = []
    # Hashing is CPU-bound: no more at once than there are cores.
    password_hash_workers: int = 0

    @model_validator(mode="after")
    def _keys_required_outside_dev(self) -> IdentitySettings:
        if self.environment != "dev" and not self.jwt_private_key_files:
            raise ValueError("IDENTITY_JWT_PRIVATE_KEY_FILES must name at least one key outside dev")
        return self
