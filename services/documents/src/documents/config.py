from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.platform.settings import ServiceSettings

MB = 1000 * 1000


class DocumentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DOCUMENTS_", extra="ignore")

    service_name: str = "documents"
    port: int = 8003
    database_url: SecretStr = SecretStr("postgresql+asyncpg://espace:espace@127.0.0.1:55432/documents")

    # Upload limits (Génération's published ones). The gateway's upload body cap
    # (GATEWAY_UPLOAD_MAX_BODY_BYTES, 20 MiB) stays above max_request_bytes plus the multipart
    # framing, so an oversized upload meets this service's problem naming the limit, not a bare 413.
    max_files: int = 5
    max_file_bytes: int = 5 * MB
    max_request_bytes: int = 15 * MB
    max_message_attachments: int = 3

    # Storage: the filesystem (make run, tests) or an S3-compatible bucket (production).
    storage: Literal["filesystem", "s3"] = "filesystem"
    storage_dir: Path = Path("var/documents")
    s3_endpoint_url: str | None = None
    s3_bucket: str = "espace-documents"
    s3_region: str = "eu-west-3"
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")
    # Where multipart parts are spooled while they arrive (always local disk, never memory).
    spool_dir: Path | None = None

    # clamd (INSTREAM over TCP).
    clamd_host: str = "127.0.0.1"
    clamd_port: int = 3310
    clamd_timeout_s: float = 30.0
    scan_poll_seconds: float = 1.0

    # Signed download links (HMAC-SHA256). The key must be set outside dev.
    link_secret: SecretStr = SecretStr("change-me")
    link_ttl_s: int = 300
    public_base_url: str = "http://127.0.0.1:8000"

    # PDF rendering in worker processes (WeasyPrint is CPU-bound; the event loop stays free),
    # niced: the consumers only record what to render, service_layer/rendering.py renders it.
    render_workers: int = 1
    render_nice: int = 10
    # false: this replica records and serves (and renders what a member asks for), others render.
    render_in_background: bool = True
    render_batch: int = 4  # rows claimed (and locked) per pass: small, so each commits soon
    render_poll_seconds: float = 1.0
    render_retry_base_seconds: float = 5.0
    render_retry_max_seconds: float = 600.0

    # The mutuelle, as letters and the card print it.
    mutuelle_name: str = "Mutuelle Espace Santé"
    mutuelle_address: str = "12 rue de la Solidarité, 75011 Paris"
    mutuelle_registration: str = "Mutuelle régie par le livre II du Code de la mutualité, SIREN 123 456 789"
    mutuelle_phone: str = "01 23 45 67 89"
    amc_number: str = "123456789"
    convention_type: str = "SP"
    routing_code: str = "CS01"
    sepa_creditor_id: str = "FR12ZZZ123456"

    def secrets_to_check(self) -> dict[str, SecretStr]:
        return {"database_url": self.database_url, "link_secret": self.link_secret}

    @property
    def spool(self) -> Path:
        return self.spool_dir or self.storage_dir / "spool"
