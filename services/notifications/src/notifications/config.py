from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.platform.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    port: int = 8002
    database_url: SecretStr = SecretStr("postgresql+asyncpg://espace:espace@127.0.0.1:55432/notifications")
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 10.0
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Espace adhérent <ne-pas-repondre@espace.example>"
    # Domain of the stable Message-ID each delivery keeps across retries.
    message_id_domain: str = "espace.example"
    send_max_attempts: int = 8
    send_poll_seconds: float = 2.0
    # Deliveries claimed, sent and stamped per transaction, and how many such batches are under
    # way at once (each on its own SMTP session): the sink's round trips of one batch overlap
    # the database work of another.
    send_batch_size: int = 100
    send_concurrency: int = 3
    # The consumer holds its next batch while more e-mails than this are due and unsent (0: no
    # limit), for at most send_queue_max_hold_seconds: a burst (a reimbursement feed) then waits
    # in the broker, where producers can see it, rather than as a queue here that only grows, and
    # each e-mail leaves soon after it is queued.
    send_queue_limit: int = 200
    send_queue_max_hold_seconds: float = 60.0
    # A kept SMTP session idle longer than this is closed rather than reused (relays drop idle
    # sessions; aiosmtpd after 300 s).
    smtp_idle_seconds: float = 30.0
