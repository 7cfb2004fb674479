"""Transactional outbox: record events in the caller's transaction, publish them afterwards.

A registration made while Kafka is down still commits; its events wait here and go out when
the broker returns. The relay claims rows with FOR UPDATE SKIP LOCKED so replicas share the work,
publishes with acks=all and idempotence, and stamps the rows in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.contracts.envelope import Envelope, Event
from shared.platform.context import CORRELATION_HEADER, current_correlation_id
from shared.platform.db import Database, asyncpg_dsn
from shared.platform.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from shared.platform.telemetry import extract_trace_context, inject_trace_headers, tracer

log = logging.getLogger(__name__)

_INSERT = text(
    "INSERT INTO outbox (event_id, topic, message_key, event_type, envelope, headers)"
    " VALUES (:event_id, :topic, :key, :event_type, CAST(:envelope AS jsonb), CAST(:headers AS jsonb))"
)


async def record_event(session: AsyncSession, event: Event, *, key: str, producer: str) -> Envelope:
    """Add an event to the outbox inside the caller's open transaction."""
    envelope = Envelope.wrap(event, producer=producer, correlation_id=current_correlation_id())
    headers = inject_trace_headers({"event_type": event.event_type})
    if envelope.correlation_id:
        headers[CORRELATION_HEADER] = envelope.correlation_id
    await session.execute(
        _INSERT,
        {
            "event_id": envelope.event_id,
            "topic": event.topic,
            "key": key,
            "event_type": event.event_type,
            "envelope": envelope.model_dump_json(),
            "headers": json.dumps(headers),
        },
    )
    return envelope


@dataclass(frozen=True)
class Recorded:
    """One event for `record_events`: its key, the correlation id it goes out under, and the
    trace context it comes from (None: the current span's)."""

    event: Event
    key: str
    correlation_id: str | None = None
    context: Context | None = None


_INSERT_MANY = text(
    "INSERT INTO outbox (event_id, topic, message_key, event_type, envelope, headers)"
    " SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]),"
    " CAST(:event_types AS text[]), CAST(:envelopes AS jsonb[]), CAST(:headers AS jsonb[]))"
)


async def record_events(session: AsyncSession, events: Sequence[Recorded], *, producer: str) -> list[Envelope]:
    """`record_event` for many events in one statement (one round trip, one NOTIFY): for a
    batch of effects committed together, e.g. the e-mails of one send."""
    envelopes, columns = [], {"event_ids": [], "topics": [], "keys": [], "event_types": [], "envelopes": [], "headers": []}
    for item in events:
        envelope = Envelope.wrap(item.event, producer=producer, correlation_id=item.correlation_id)
        headers: dict[str, str] = {"event_type": item.event.event_type}
        propagate.inject(headers, context=item.context)
        if envelope.correlation_id:
            headers[CORRELATION_HEADER] = envelope.correlation_id
        envelopes.append(envelope)
        columns["event_ids"].append(envelope.event_id)
        columns["topics"].append(item.event.topic)
        columns["keys"].append(item.key)
        columns["event_types"].append(item.event.event_type)
        columns["envelopes"].append(envelope.model_dump_json())
        columns["headers"].append(json.dumps(headers))
    if envelopes:
        await session.execute(_INSERT_MANY, columns)
    return envelopes


class OutboxRelay:
    """Publishes pending outbox rows; woken by NOTIFY, with a slow poll as the safety net."""

    def __init__(
        self,
        db: Database,
        broker: KafkaBroker,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.max_backoff_seconds = max_backoff_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._tracer = tracer("outbox.relay")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(asyncpg_dsn(self.db.url))
            await self._listener.add_listener("outbox", lambda *_: self._wake.set())
        except Exception as exc:  # polling still works without it
            log.warning("outbox listener unavailable, polling only", extra={"error_type": type(exc).__name__})
            self._listener = None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            if self._listener is None or self._listener.is_closed():
                await self._listen()
            try:
                published = await self.publish_pending()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "outbox publish failed, will retry",
                    extra={"error_type": type(exc).__name__, "retry_in_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            if published >= self.batch_size:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    async def refresh_metrics(self) -> None:
        """Backlog and the age of the oldest unpublished row, for a metrics scrape."""
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT count(*) AS backlog,"
                        " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest"
                        " FROM outbox WHERE published_at IS NULL"
                    )
                )
            ).one()
        OUTBOX_BACKLOG.set(row.backlog)
        OUTBOX_OLDEST_AGE.set(float(row.oldest))

    async def publish_pending(self) -> int:
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT id, topic, message_key, envelope::text AS envelope, headers"
                        " FROM outbox WHERE published_at IS NULL ORDER BY id"
                        " LIMIT :limit FOR UPDATE SKIP LOCKED"
                    ),
                    {"limit": self.batch_size},
                )
            ).all()
            if not rows:
                return 0
            # Send the whole batch, then wait for every ack: the producer's sender packs what is
            # queued into one produce request per broker (linger_ms), so a batch is one round
            # trip; the idempotent producer keeps per-partition order. Each publish is a span,
            # child of the request that recorded the row (its trace context is in the headers),
            # and parent of the consumers' spans (the message carries the publish span's context).
            spans = []
            pending = []
            for row in rows:
                span = self._tracer.start_span(
                    f"publish {row.headers.get('event_type', row.topic)}",
                    context=extract_trace_context(row.headers),
                    kind=trace.SpanKind.PRODUCER,
                    attributes={"messaging.system": "kafka", "messaging.operation": "publish",
                                "messaging.destination.name": row.topic},
                )
                spans.append(span)
                headers = {k: v for k, v in row.headers.items() if k not in ("traceparent", "tracestate")}
                propagate.inject(headers, context=trace.set_span_in_context(span))
                headers["content-type"] = "application/json"
                pending.append(
                    await self.broker.publish(
                        row.envelope.encode(), row.topic, key=row.message_key.encode(), headers=headers,
                        no_confirm=True,
                    )
                )
            try:
                await asyncio.gather(*pending)
            except Exception as exc:
                for span in spans:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
                    span.end()
                raise
            for span in spans:
                span.end()
            await session.execute(
                text("UPDATE outbox SET published_at = :now, attempts = attempts + 1 WHERE id = ANY(:ids)"),
                {"now": datetime.now(UTC), "ids": [row.id for row in rows]},
            )
        return len(rows)
