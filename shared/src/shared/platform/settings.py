"""Settings every service shares. Each service subclasses `ServiceSettings` with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "espace", "dev", "password"}


class ServiceSettings(BaseSettings):
    """Endpoints come from the environment; defaults suit `make run` on one machine.

    Outside development a placeholder secret (or the dev database password) refuses to start,
    so a forgotten variable fails loudly instead of shipping a guessable secret.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    service_name: str
    environment: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int
    database_url: SecretStr
    kafka_bootstrap: str = "127.0.0.1:9092"
    identity_url: str = "http://127.0.0.1:8001"
    log_level: str = "INFO"
    # Polling is only the safety net: LISTEN/NOTIFY wakes the relay at once.
    outbox_poll_seconds: float = 1.0
    consumer_max_attempts: int = 5
    consumer_retry_base_seconds: float = 0.2
    # A consumer takes up to this many events at once (one transaction, one offset commit)...
    consumer_batch_size: int = 500
    # ...and, when the broker has nothing, waits at most this long for some.
    consumer_batch_wait_ms: int = 50
    # Test hook (never set in production): when this file exists, a consumer exits like kill -9
    # right after a batch's transaction committed and before its offsets are.
    consumer_crash_after_transaction_file: str | None = None
    # Prometheus metrics on their own port (<SVC>_METRICS_PORT); unset: not served.
    metrics_port: int | None = None

    def secrets_to_check(self) -> dict[str, SecretStr]:
        return {"database_url": self.database_url}

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "dev":
            return self
        for name, value in self.secrets_to_check().items():
            raw = value.get_secret_value()
            if raw.lower() in PLACEHOLDER_SECRETS or ":espace@" in raw:
                raise ValueError(f"{name} holds a placeholder secret; set a real one outside dev")
        return self
