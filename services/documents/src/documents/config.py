from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.platform.settings import ServiceSettings


class DocumentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DOCUMENTS_", extra="ignore")

    service_name: str = "documents"
    port: int = 8003
    database_url: SecretStr = SecretStr("postgresql+asyncpg://espace:espace@127.0.0.1:55432/documents")
