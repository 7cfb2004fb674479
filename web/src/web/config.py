"""Web settings (env prefix WEB_). Like the gateway, web has no database and no broker: it is a
client of the gateway's public API, so it does not use shared's ServiceSettings."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", env_file=None, extra="ignore")

    service_name: str = "web"
    environment: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8005
    log_level: str = "INFO"

    # The gateway's public API: the only thing web talks to.
    gateway_url: str = "http://127.0.0.1:8000"
    connect_timeout_s: float = 1.0
    timeout_s: float = 10.0
    upload_timeout_s: float = 120.0
    pool_limit: int = 256

    # 32 bytes, urlsafe base64 (Fernet-style), that encrypt the session cookie (AES-256-GCM).
    # Random per process when unset (dev): sessions then end when web restarts. Replicas must
    # share it. Several keys, comma-separated: the first encrypts, all decrypt (rotation).
    session_keys: SecretStr | None = None
    # Cookies carry Secure (and the __Host- prefix) unless in dev over plain http.
    secure_cookies: bool | None = None
    # How long the browser keeps the session cookie; the refresh token's own life (30 days,
    # identity's setting) still decides when a new log-in is needed.
    session_cookie_max_age_s: int = 30 * 24 * 3600

    # The access token is refreshed this long before it expires (identity's tokens live 900 s).
    refresh_margin_s: float = 30.0
    # How long a page may show the contract's beneficiaries as last asked (a new child shows within it).
    beneficiaries_memory_s: float = 60.0

    # Shown on the CGU page; identity's terms_version must match what the text says.
    terms_version: str = "2026-01"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.environment == "prod"
