"""Raw asyncpg access inside the service's SQLModel transactions.

The use cases here write many rows at once (a Sécu file is 100,000 lines) and read the member's
lines on a hot path; asyncpg's COPY and prepared statements do both well. The connection is the
one under the caller's SQLAlchemy transaction, so everything still commits together."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from shared.contracts.envelope import Envelope, Event
from shared.platform.context import CORRELATION_HEADER, current_correlation_id
from shared.platform.db import driver_connection as connection  # noqa: F401  (the use cases' pg.connection)
from shared.platform.telemetry import inject_trace_headers

PRODUCER = "claims"


async def copy(conn: asyncpg.Connection, table: str, columns: Sequence[str], records: list[tuple]) -> None:
    if records:
        await conn.copy_records_to_table(table, records=records, columns=list(columns))


def outbox_record(event: Event, key: str) -> tuple:
    """One outbox row, built the way shared.platform.outbox.record_event builds it."""
    envelope = Envelope.wrap(event, producer=PRODUCER, correlation_id=current_correlation_id())
    headers = inject_trace_headers({"event_type": event.event_type})
    if envelope.correlation_id:
        headers[CORRELATION_HEADER] = envelope.correlation_id
    return (envelope.event_id, event.topic, key, event.event_type, envelope.model_dump_json(), json.dumps(headers))


OUTBOX_COLUMNS = ("event_id", "topic", "message_key", "event_type", "envelope", "headers")


async def publish(conn: asyncpg.Connection, events: Iterable[tuple[Event, str]]) -> None:
    """Record events (with their keys) in the outbox, in the caller's transaction."""
    records = [outbox_record(event, key) for event, key in events]
    if len(records) > 20:
        await copy(conn, "outbox", OUTBOX_COLUMNS, records)
    elif records:
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, message_key, event_type, envelope, headers)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
            records,
        )


def jsonb(value: Any) -> str:
    return json.dumps(value, default=str)
