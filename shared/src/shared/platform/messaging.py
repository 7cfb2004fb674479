"""Kafka: the broker every service builds the same way, and event consumers that take events in
batches, with an inbox, retries and a dead-letter topic.

A consumer takes what the broker has (up to `consumer_batch_size` events; the broker holds a fetch
until it has `consumer_fetch_min_bytes` or `consumer_batch_wait_ms` passed), handles the whole batch in ONE database
transaction together with its inbox rows, and commits the offsets once, after that transaction
committed (AckPolicy.ACK on a batch subscriber: the commit follows the handler's return, never
precedes it). Per-message offset commits and one transaction per event were most of the cost of
an event, for the consumers and for the broker.

A handler that raises rolls the batch's transaction back; the batch is then run again without
that event (and without the events after it with the same key, so that per-key order holds),
and the held-back events are run alone, in order, with retries and backoff. After the last try
an event goes to `<topic>.dlq` with the error type in its headers and the partition moves on.
While the database itself is unreachable nothing is parked: the whole batch is put back (nack
rewinds every partition to the batch's first record) and handled once the database returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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
from shared.platform import inbox, metrics
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
        # Sends issued together (the relay's batch) leave in one produce request per partition.
        linger_ms=2,
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


class DatabaseOutage(Exception):
    """The database is unreachable: the batch goes back to the broker, nothing is parked."""


@dataclass
class Record:
    """One Kafka record of a batch, decoded once."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    body: bytes
    headers: dict[str, str]
    envelope: Envelope | None = None
    event: Any = None
    handler: Handler | None = None
    attempts: int = 0

    @property
    def order_key(self) -> tuple[str, int, bytes | None]:
        return (self.topic, self.partition, self.key)


@dataclass
class BatchOutcome:
    handled: int = 0
    skipped: int = 0  # redeliveries the inbox recognised
    parked: list[Record] = field(default_factory=list)


class ConsumerRunner:
    """Wires an `EventConsumer` onto the broker as a batch subscriber."""

    def __init__(
        self,
        consumer: EventConsumer,
        *,
        broker: KafkaBroker,
        db: Database,
        max_attempts: int,
        retry_base_seconds: float,
        batch_size: int = 500,
        batch_wait_ms: int = 150,
        fetch_min_bytes: int = 16384,
        after_commit: Callable[[], None] | None = None,
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None,
        before_batch: Callable[[], Awaitable[None]] | None = None,
        crash_after_transaction_file: str | None = None,
    ) -> None:
        self.consumer = consumer
        self.before_commit = before_commit
        # Flow control: awaited before each batch is handled, so a consumer whose effects queue
        # up (notifications' e-mails) can hold the next batch until its queue has room. The
        # broker keeps the rest: the lag grows, which is what producers upstream can see.
        self.before_batch = before_batch
        self.broker = broker
        self.db = db
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.after_commit = after_commit
        self.crash_after_transaction_file = crash_after_transaction_file
        self._tracer = tracer(f"consumer.{consumer.name}")
        self.kafka_consumer: Any = None  # the aiokafka consumer, for the lag metric
        self.committed: dict[tuple[str, int], int] = {}  # next offset per partition, once committed
        metrics.register_consumer(self)
        for topic in consumer.topics:  # the series exist (at 0) before anything is parked
            metrics.DEAD_LETTERED.labels(consumer.name, topic)

        @broker.subscriber(
            *consumer.topics,
            group_id=consumer.name,
            ack_policy=AckPolicy.ACK,
            auto_offset_reset="earliest",
            batch=True,
            max_records=batch_size,
            batch_timeout_ms=batch_wait_ms,
            # The broker answers a fetch once it has fetch_min_bytes or after batch_wait_ms.
            fetch_min_bytes=fetch_min_bytes,
            fetch_max_wait_ms=batch_wait_ms,
            title=f"{consumer.name}",
        )
        async def on_batch(msg: KafkaMessage) -> None:
            self.kafka_consumer = msg.consumer
            if self.before_batch is not None:
                await self.before_batch()
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            await self.handle_batch(
                [
                    Record(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        body=r.value or b"",
                        headers={k: v.decode("utf-8", "replace") for k, v in r.headers},
                    )
                    for r in records
                ]
            )
            # Returning lets FastStream commit the offsets (after the transaction, by design).
            for r in records:
                self.committed[(r.topic, r.partition)] = r.offset + 1

    # -- a batch ------------------------------------------------------------------------------
    async def handle_batch(self, records: Sequence[Record]) -> BatchOutcome:
        outcome = BatchOutcome()
        runnable: list[Record] = []
        for record in records:
            if self._decode(record, outcome):
                runnable.append(record)
        try:
            await self._run(runnable, outcome)
        except DatabaseOutage as exc:
            log.warning("database unavailable, batch put back", extra={"consumer": self.consumer.name})
            await asyncio.sleep(1.0)
            raise NackMessage() from exc
        for record in outcome.parked:
            await self._dead_letter(record)
        metrics.consumer_batch(self.consumer.name, len(records), outcome.handled, outcome.skipped)
        return outcome

    def _decode(self, record: Record, outcome: BatchOutcome) -> bool:
        """True when the record is an event of ours with a payload that parses."""
        try:
            record.envelope = Envelope.model_validate_json(record.body)
        except ValidationError as exc:
            self._park(record, exc, outcome)
            return False
        entry = self.consumer.handlers.get(record.envelope.event_type)
        if entry is None:
            return False  # tolerant reader: not ours to handle
        event_cls, record.handler = entry
        try:
            record.event = event_cls.model_validate(record.envelope.payload)
        except ValidationError as exc:  # a retry cannot fix a payload that does not parse
            self._park(record, exc, outcome)
            return False
        return True

    def _park(self, record: Record, exc: BaseException, outcome: BatchOutcome) -> None:
        record.headers["dlq.error_type"] = type(exc).__name__
        outcome.parked.append(record)

    async def _run(self, records: list[Record], outcome: BatchOutcome) -> None:
        """All together in one transaction; what fails is held back and run alone."""
        held: list[Record] = []
        together = records
        while together:
            failed = await self._transaction(together, outcome)
            if failed is None:
                break
            if failed is _UNATTRIBUTED:
                held.extend(together)  # each alone, in order
                break
            bad = together[failed]
            # The failing event and the later ones with its key wait, so per-key order holds.
            later = [r for r in together[failed + 1 :] if r.order_key == bad.order_key]
            held.extend([bad, *later])
            waiting = {id(r) for r in (bad, *later)}
            together = [r for r in together if id(r) not in waiting]
        held.sort(key=lambda r: (r.topic, r.partition, r.offset))
        for record in held:
            await self._alone_with_retries(record, outcome)

    async def _transaction(self, records: list[Record], outcome: BatchOutcome) -> Any:
        """Run `records` in one transaction. None when it committed; else the index of the
        event whose handler failed, or _UNATTRIBUTED when the commit itself failed (the
        transaction is rolled back either way)."""
        failed: int | None = None
        failed_exc: BaseException | None = None
        handled = skipped = 0
        try:
            async with self.db.transaction() as session:
                fresh = await inbox.claim_many(session, self.consumer.name, [r.envelope for r in records])
                for index, record in enumerate(records):
                    if record.envelope.event_id not in fresh:
                        skipped += 1
                        continue
                    fresh.discard(record.envelope.event_id)  # the same event twice in a batch
                    try:
                        await self._call(session, record)
                    except Exception as exc:
                        if _is_database_outage(exc):
                            raise
                        failed, failed_exc = index, exc
                        raise _Rollback() from exc
                    handled += 1
                if handled and self.before_commit:
                    # What the handlers left to write together (one statement for the batch); a
                    # failure here is the commit's: no one event to blame.
                    await self.before_commit(session)
        except _Rollback:
            records[failed].attempts += 1
            self._log_failure(records[failed], failed_exc)
            return failed
        except Exception as exc:
            if _is_database_outage(exc):
                raise DatabaseOutage() from exc
            if len(records) == 1:
                records[0].attempts += 1
                self._log_failure(records[0], exc)
                return 0
            # The commit itself failed (a constraint checked at flush or commit): no one event
            # to blame, so each runs alone.
            log.warning("batch commit failed, running its events one by one",
                        extra={"consumer": self.consumer.name, "error_type": type(exc).__name__})
            return _UNATTRIBUTED
        self._crash_hook()
        outcome.handled += handled
        outcome.skipped += skipped
        if skipped:
            log.info("redelivered events skipped", extra={"consumer": self.consumer.name, "count": skipped})
        if handled and self.after_commit:
            self.after_commit()
        return None

    async def _call(self, session: AsyncSession, record: Record) -> None:
        envelope = record.envelope
        token = correlation_id_var.set(envelope.correlation_id)
        try:
            with self._tracer.start_as_current_span(
                f"consume {envelope.event_type}",
                context=extract_trace_context(record.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.consumer.group.name": self.consumer.name,
                },
            ):
                await record.handler(HandlerContext(session=session, envelope=envelope), record.event)
        finally:
            correlation_id_var.reset(token)

    async def _alone_with_retries(self, record: Record, outcome: BatchOutcome) -> None:
        while True:
            if record.attempts >= self.max_attempts:
                outcome.parked.append(record)
                return
            if record.attempts:
                await asyncio.sleep(self.retry_base_seconds * 2 ** (record.attempts - 1))
            if await self._transaction([record], outcome) is None:
                return

    def _log_failure(self, record: Record, exc: BaseException | None) -> None:
        record.headers["dlq.error_type"] = type(exc).__name__
        log.warning(
            "event handling failed, retrying alone",
            extra={"event_type": record.envelope.event_type, "attempt": record.attempts,
                   "error_type": type(exc).__name__},
        )

    def _crash_hook(self) -> None:
        """Test hook: die like kill -9 right after a transaction committed, before the offsets
        are, when the named file exists (removed first, so the restarted process lives on)."""
        path = self.crash_after_transaction_file
        if path and os.path.exists(path):
            os.unlink(path)
            log.warning("test hook: exiting after the transaction, before the offset commit")
            logging.shutdown()
            os._exit(137)

    async def _dead_letter(self, record: Record) -> None:
        error_type = record.headers.pop("dlq.error_type", "Exception")
        log.error(
            "event sent to dead-letter topic",
            extra={"topic": record.topic, "error_type": error_type, "attempts": record.attempts},
        )
        try:
            await self.broker.publish(
                record.body,
                dead_letter(record.topic),
                key=record.key,
                headers={
                    **record.headers,
                    "dlq.consumer": self.consumer.name,
                    # The type only: exception texts can carry personal data.
                    "dlq.error_type": error_type,
                    "dlq.attempts": str(record.attempts),
                    "dlq.source_partition": str(record.partition),
                    "dlq.source_offset": str(record.offset),
                },
            )
        except Exception as publish_exc:
            # Not parked, so not acknowledged either: the batch comes back later (the inbox
            # skips what it already handled).
            raise NackMessage() from publish_exc
        metrics.dead_lettered(self.consumer.name, record.topic)


_UNATTRIBUTED = object()


class _Rollback(Exception):
    """Raised inside the transaction to roll it back after a handler failed."""
