from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.platform.settings import ServiceSettings


class ClaimsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore")

    service_name: str = "claims"
    port: int = 8004
    database_url: SecretStr = SecretStr("postgresql+asyncpg://espace:espace@127.0.0.1:55432/claims")
    # Words whose similar directory names each process remembers (service_layer.providers_search.
    # NameMatches: ~4 KB a word); 0: none, every name search asks PostgreSQL's trigram index.
    directory_name_cache_words: int = 4096
    # The hot read paths' asyncpg pool (shared.platform.db.DirectPool).
    read_pool_size: int = 8
    # The NOEMIE import holds its next batch while claims' outbox holds more unpublished events
    # than this, or one consumer group of claims' topic is further behind (shared.platform.
    # backpressure): each claim's events are then handled, and its e-mail sent, within seconds of
    # its settlement, not after the whole file. 0: unpaced.
    import_max_lag: int = 200
