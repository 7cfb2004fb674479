"""The envelope every Kafka message carries, whatever its event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event payload.

    Consumers ignore fields they do not know (tolerant reader), so a producer may add optional
    fields within a version; anything else is a new version published beside the old one.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: str | None = None
    payload: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, *, producer: str, correlation_id: str | None) -> Envelope:
        return cls(
            event_type=event.event_type,
            schema_version=event.schema_version,
            producer=producer,
            correlation_id=correlation_id,
            payload=event.model_dump(mode="json"),
        )
