"""Raw asyncpg access inside the service's SQLModel transactions.

The use cases here write many rows at once (a Sécu file is 100,000 lines) and read the member's
lines on a hot path; asyncpg's COPY and prepared statements do both well. The connection is the
one under the caller's SQLAlchemy transaction, so everything still commits together."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.contracts.envelope import Envelope, Event
from shared.platform.context import CORRELATION_HEADER, current_correlation_id
from shared.platform.db import asyncpg_dsn
from shared.platform.telemetry import inject_trace_headers

PRODUCER = "claims"


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released read connection needs beyond asyncpg's own ROLLBACK of a transaction
    left open (a cancelled request): nothing, since nothing on the read paths changes session
    state (settings are SET LOCAL, no LISTEN, no advisory lock, no cursor outside a transaction).
    asyncpg's default reset (`RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()`) was
    one more round trip per request, and PostgreSQL work, for nothing."""


class ReadPool:
    """The hot read paths' own asyncpg pool (the directory's searches, a member's lines): read-only
    statements, prepared once per connection, without an ORM session and its BEGIN, ROLLBACK
    and liveness ping around each request, nor a session reset after it (`_keep_session`: only
    for statements that leave the session as they found it)."""

    def __init__(self, url: str, size: int = 8) -> None:
        self.dsn, self.size = asyncpg_dsn(url), size
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.size, reset=_keep_session)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


async def connection(session: AsyncSession) -> asyncpg.Connection:
    sa_connection = await session.connection()
    raw = await sa_connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


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
