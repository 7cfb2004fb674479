"""Gateway settings (env prefix GATEWAY_). The gateway has no database and no broker, so it
does not use shared's ServiceSettings (which requires both); the names and defaults follow it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.platform.auth import JWKS_PATH

KIB = 1024
MIB = 1024 * KIB

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


@dataclass(frozen=True)
class Rate:
    """`limit` requests per `window_s` seconds (a token bucket of `limit` tokens refilled over
    the window, so bursts up to `limit` pass and the sustained rate is limit/window)."""

    limit: int
    window_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text)
        if not match:
            raise ValueError(f"rate {text!r}: expected 'N/SECONDS' such as '300/60' (or '5/1m')")
        limit, window, unit = int(match[1]), float(match[2]), match[3] or "s"
        window *= {"s": 1, "m": 60, "h": 3600}[unit]
        if limit < 1 or window <= 0:
            raise ValueError(f"rate {text!r}: limit and window must be positive")
        return cls(limit, window)


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore")

    service_name: str = "gateway"
    environment: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Prometheus metrics on their own port (GATEWAY_METRICS_PORT), not on the public one; unset: none.
    metrics_port: int | None = None

    # Where each service listens. /api/v1/<name>/... goes to <name>_url with the same path.
    identity_url: str = "http://127.0.0.1:8001"
    notifications_url: str = "http://127.0.0.1:8002"
    documents_url: str = "http://127.0.0.1:8003"
    claims_url: str = "http://127.0.0.1:8004"
    # The web front end: every path outside /api/ and the gateway's own goes there. Empty: off
    # (those paths then answer 404 as before).
    web_url: str | None = "http://127.0.0.1:8005"
    # Defaults to identity_url + the JWKS path.
    jwks_url: str | None = None

    # How long a verified access token is remembered (never past its expiry); 0 turns it off.
    token_cache_s: float = 60.0

    # Upstream timeouts. `timeout_s` bounds the wait for the first byte of the answer and every
    # gap between two reads after it (a stalled service gives 504 after this long, never a hang).
    connect_timeout_s: float = 1.0
    timeout_s: float = 10.0
    upload_timeout_s: float = 120.0

    # Request body caps: JSON routes, and the upload routes (documents).
    max_body_bytes: int = 64 * KIB
    upload_max_body_bytes: int = 20 * MIB

    # Upstream connection pool (one aiohttp session for all services).
    pool_limit: int = 512
    pool_limit_per_host: int = 128
    # Below uvicorn's default keep-alive (5 s) so the gateway never reuses a connection the
    # service is about to close (which would fail a POST, that must not be retried).
    upstream_keepalive_s: float = 4.0

    # Rate limits on the sensitive identity routes (see routes.RATE_LIMITED), per client IP and
    # per account identifier (HMAC of the membership number / identifier in the body).
    # Generous by default; tests set them low, e.g. GATEWAY_RATE_LIMIT_PER_IP=3/60.
    rate_limits_enabled: bool = True
    rate_limit_per_ip: str = "300/60"
    rate_limit_per_account: str = "20/60"
    rate_limit_max_keys: int = 100_000
    # Key of the HMAC that turns identifiers into limiter keys (never stored in clear). Random
    # per process when unset; replicas sharing a limiter store must share it.
    rate_limit_key: SecretStr | None = None
    # How many reverse proxies in front of the gateway append to X-Forwarded-For. 0 = the
    # gateway faces clients directly: the socket peer is the client and any X-Forwarded-For
    # sent by the client is ignored (it could be forged to dodge per-IP limits).
    trusted_proxy_hops: int = 0

    # Browser origins allowed to call the API (exact match). Comma-separated or a JSON list.
    cors_origins: Annotated[list[str], NoDecode] = []
    cors_max_age_s: int = 600

    hsts_max_age_s: int = 63_072_000
    docs_enabled: bool = True

    # The merged OpenAPI document: refetched from the services this often, sooner while one
    # of them is missing.
    openapi_refresh_s: float = 60.0
    openapi_retry_s: float = 5.0
    openapi_fetch_timeout_s: float = 2.0
    readiness_timeout_s: float = 1.0

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        cleaned = [o.rstrip("/") for o in origins]
        for origin in cleaned:
            if not _ORIGIN.match(origin):
                raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port] (no '*', no path)")
        return cleaned

    @field_validator("rate_limit_per_ip", "rate_limit_per_account")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        Rate.parse(value)
        return value

    @model_validator(mode="after")
    def _prod_rules(self) -> GatewaySettings:
        if self.environment == "prod":
            insecure = [o for o in self.cors_origins if o.startswith("http://")]
            if insecure:
                raise ValueError(f"plain-http CORS origins are refused outside dev: {insecure}")
        return self

    @property
    def ip_rate(self) -> Rate:
        return Rate.parse(self.rate_limit_per_ip)

    @property
    def account_rate(self) -> Rate:
        return Rate.parse(self.rate_limit_per_account)

    @property
    def effective_jwks_url(self) -> str:
        return self.jwks_url or self.identity_url.rstrip("/") + JWKS_PATH

    def service_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url.rstrip("/"),
            "notifications": self.notifications_url.rstrip("/"),
            "documents": self.documents_url.rstrip("/"),
            "claims": self.claims_url.rstrip("/"),
        }
