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
    # The asyncpg pool of the hot paths (log-in, refresh, GET /me): shared.platform.db.DirectPool.
    direct_pool_size: int = 8
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
    # -- registration follow-ups, profile and e-mail change -------------------------------
    # Activation links an account may be sent per hour (registration and resends together):
    # beyond, a resend is silently dropped (same 202, no e-mail), so nobody can flood a mailbox.
    activation_links_per_hour: int = 5
    # "You already have an account" e-mails per account and per hour, for the same reason.
    account_exists_notices_per_hour: int = 3
    email_change_ttl_hours: int = 24
    # E-mail change requests per account and per hour (each sends two e-mails).
    email_changes_per_hour: int = 5
    # Wrong passwords at a password re-check (e-mail change) before it is refused for a while:
    # a stolen access token must not become a way to guess the password.
    password_recheck_max_failures: int = 5
    password_recheck_window_minutes: int = 15

    @model_validator(mode="after")
    def _keys_required_outside_dev(self) -> IdentitySettings:
        if self.environment != "dev" and not self.jwt_private_key_files:
            raise ValueError("IDENTITY_JWT_PRIVATE_KEY_FILES must name at least one key outside dev")
        return self

    # -- Sessions: refresh-token families (one per log-in), rotated on every use. -------------
    # A family dies this long after the log-in that opened it, however often it is refreshed.
    refresh_token_absolute_ttl_days: int = 30
    # Optional idle lifetime: a refresh token unused this long expires (None: only the absolute one).
    refresh_token_idle_ttl_hours: int | None = None

    # -- Brute force: per-identifier throttling of log-in attempts. ---------------------------
    # After `login_free_failures` consecutive failures, each attempt waits 2^(n - free) seconds,
    # at most `login_max_delay_seconds`; `login_hourly_failure_cap` failures within an hour block
    # the identifier until that hour ends. Success resets the consecutive count.
    login_free_failures: int = 5
    login_max_delay_seconds: int = 900
    login_hourly_failure_cap: int = 20
    # Consecutive failures are forgotten after this long without a new one.
    login_failure_memory_hours: int = 24
    # HMAC key that turns identifiers into throttle keys (never stored in clear). Unset: derived
    # from the first signing key (so throttling state resets when that key is rotated).
    login_throttle_key: SecretStr | None = None

    # -- Password recovery. ---------------------------------------------------------------------
    password_reset_ttl_minutes: int = 30
    # A new reset e-mail is not sent while the previous link is younger than this (mail bombing).
    password_reset_min_interval_seconds: int = 60

    # -- Management-centre agents (back office). -------------------------------------------------
    # The password-setting link printed by `identity create-agent`.
    agent_password_link_ttl_hours: int = 24
    # An agent's session (refresh tokens) lasts a working day at most; access tokens as members'.
    agent_session_ttl_hours: int = 12
    # Name shown by the authenticator app beside the agent's e-mail.
    agent_totp_issuer: str = "Espace back-office"
    # Key that encrypts the agents' TOTP secrets at rest. Unset: derived from the first signing
    # key, so rotating that key means re-enrolling the agents (set this one in production).
    agent_totp_key: SecretStr | None = None

    @model_validator(mode="after")
    def _short_lived_access_tokens(self) -> IdentitySettings:
        if not 0 < self.access_token_ttl_seconds <= 900:
            raise ValueError("IDENTITY_ACCESS_TOKEN_TTL_SECONDS must be between 1 and 900 (15 minutes)")
        if self.refresh_token_absolute_ttl_days < 1 or self.login_free_failures < 1:
            raise ValueError("refresh_token_absolute_ttl_days and login_free_failures must be positive")
        return self
