"""Kafka: the broker every service builds the same way, and event consumers with an inbox,
retries and a dead-letter topic.

Messages are acknowledged after handling (AckPolicy.ACK, not FastStream's ACK_FIRST). A handler
that raises is retried with backoff; after the last try the message goes to `<topic>.dlq` with
the error in its headers and the partition moves on. While the database itself is unreachable,
the message is not parked but put back (nack), to be handled once the database returns.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.security import SASLScram512
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.contracts.envelope import Envelope, Event
from shared.contracts.topics import dead_letter
from shared.platform import inbox
from shared.platform.context import correlation_id_var
from shared.platform.db import Database
from shared.platform.telemetry import extract_trace_context, tracer

log = logging.getLogger(__name__)


def make_broker(
    bootstrap: str,
    client_id: str,
    *,
    sasl_username: str | None = None,
    sasl_password: str | None = None,
    ca_file: str | None = None,
) -> KafkaBroker:
    # FastStream logs every message at INFO; our handlers log what matters.
    logging.getLogger(f"{client_id}.kafka").setLevel(logging.WARNING)
    security = None
    if sasl_username:
        # The certificate is verified (default context), against the cluster's CA when given.
        security = SASLScram512(sasl_username, sasl_password or "", ssl_context=ssl.create_default_context(cafile=ca_file), use_ssl=True)
    return KafkaBroker(
        bootstrap,
        client_id=client_id,
        security=security,
        acks="all",
        enable_idempotence=True,
        # Fail a send within seconds while the broker is away; the outbox retries it.
        request_timeout_ms=10_000,
        logger=logging.getLogger(f"{client_id}.kafka"),
    )


@dataclass
class HandlerContext:
    session: AsyncSession
    envelope: Envelope


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


class EventConsumer:
    """One consumer group: the events it handles, by type. Other event types are skipped."""

    def __init__(self, name: str, topics: tuple[str, ...]) -> None:
        self.name = name
        self.topics = topics
        self.handlers: dict[str, tuple[type[Event], Handler]] = {}

    def on(self, event_cls: type[Event]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.handlers[event_cls.event_type] = (event_cls, handler)
            return handler

        return register


def _is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | asyncpg.exceptions.CannotConnectNowError | asyncpg.InterfaceError)


class ConsumerRunner:
    """Wires an `EventConsumer` onto the broker and runs each event in one transaction."""

    def __init__(
        self,
        consumer: EventConsumer,
        *,
        broker: KafkaBroker,
        db: Database,
        max_attempts: int,
        retry_base_seconds: float,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.broker = broker
        self.db = db
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.after_commit = after_commit
        self._tracer = tracer(f"consumer.{consumer.name}")

        @broker.subscriber(
            *consumer.topics,
            group_id=consumer.name,
            ack_policy=AckPolicy.ACK,
            auto_offset_reset="earliest",
            title=f"{consumer.name}",
        )
        async def on_message(msg: KafkaMessage) -> None:
            await self.handle(msg.body, dict(msg.headers), msg.raw_message)

    async def handle(self, body: bytes, headers: dict[str, str], record: Any) -> None:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            await self._dead_letter(body, headers, record, exc, attempts=0)
            return
        entry = self.consumer.handlers.get(envelope.event_type)
        if entry is None:
            return  # tolerant reader: not ours to handle
        event_cls, handler = entry
        token = correlation_id_var.set(envelope.correlation_id)
        try:
            with self._tracer.start_as_current_span(
                f"consume {envelope.event_type}",
                context=extract_trace_context(headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={"messaging.system": "kafka", "messaging.operation": "process"},
            ):
                await self._handle_with_retries(event_cls, handler, envelope, body, headers, record)
        finally:
            correlation_id_var.reset(token)

    async def _handle_with_retries(self, event_cls, handler, envelope, body, headers, record) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                event = event_cls.model_validate(envelope.payload)
                async with self.db.transaction() as session:
                    if not await inbox.claim(session, self.consumer.name, envelope):
                        return  # already handled: a redelivery
                    await handler(HandlerContext(session=session, envelope=envelope), event)
                if self.after_commit:
                    self.after_commit()
                return
            except ValidationError as exc:  # a retry cannot fix a payload that does not parse
                await self._dead_letter(body, headers, record, exc, attempts=attempt)
                return
            except Exception as exc:
                if _is_database_outage(exc):
                    log.warning("database unavailable, message put back", extra={"event_type": envelope.event_type})
                    await asyncio.sleep(1.0)
                    raise NackMessage() from exc
                if attempt >= self.max_attempts:
                    await self._dead_letter(body, headers, record, exc, attempts=attempt)
                    return
                log.warning(
                    "event handling failed, retrying",
                    extra={"event_type": envelope.event_type, "attempt": attempt, "error_type": type(exc).__name__},
                )
                await asyncio.sleep(self.retry_base_seconds * 2 ** (attempt - 1))

    async def _dead_letter(self, body: bytes, headers: dict[str, str], record: Any, exc: Exception, *, attempts: int) -> None:
        topic = getattr(record, "topic", self.consumer.topics[0])
        log.error(
            "event sent to dead-letter topic",
            extra={"topic": topic, "error_type": type(exc).__name__, "attempts": attempts},
        )
        try:
            await self.broker.publish(
                body,
                dead_letter(topic),
                key=getattr(record, "key", None),
                headers={
                    **headers,
                    "dlq.consumer": self.consumer.name,
                    "dlq.error_type": type(exc).__name__,
                    # The type only: exception texts can carry personal data.
                    "dlq.attempts": str(attempts),
                    "dlq.source_partition": str(getattr(record, "partition", "")),
                    "dlq.source_offset": str(getattr(record, "offset", "")),
                },
            )
        except Exception as publish_exc:
            # Not parked, so not acknowledged either: the message comes back later.
            raise NackMessage() from publish_exc
