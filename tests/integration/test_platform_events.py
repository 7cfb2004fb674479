"""Batch consumption on the real system: one poison event in a batch does not hold back the
others, and a consumer that dies between its transaction and its offset commit gets the batch
again and skips what it already did (the inbox), so nothing happens twice."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts import topics
from shared.contracts.envelope import Envelope
from shared.contracts.identity import EmailChanged
from tests.integration.system import LOCAL, System


def _email_changed(first_name: str) -> tuple[Envelope, str]:
    address = f"batch.{uuid.uuid4().hex[:12]}@example.org"
    event = EmailChanged(member_id=uuid.uuid4(), account_id=uuid.uuid4(), email=address, first_name=first_name,
                         last_name="Martin", changed_at=datetime.now(UTC))
    return Envelope.wrap(event, producer="identity", correlation_id=uuid.uuid4().hex), address


async def _publish_together(bootstrap: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=50)
    await producer.start()
    try:
        # Queued at once, sent in one produce request: the consumer fetches them as one batch.
        sent = [
            await producer.send(topics.IDENTITY_MEMBERS, e.model_dump_json().encode(), key=str(e.payload["member_id"]).encode(),
                                headers=[("event_type", e.event_type.encode())])
            for e in envelopes
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _event_id(value: bytes) -> str | None:
    # Other tests park messages that are no envelope at all on the same dead-letter topic.
    try:
        return Envelope.model_validate_json(value).event_id.hex
    except ValueError:
        return None


async def _dead_letters(bootstrap: str, event_ids: set[str], timeout: float) -> list:
    # No group: every partition of the topic, from the beginning.
    consumer = AIOKafkaConsumer(topics.dead_letter(topics.IDENTITY_MEMBERS), bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not found:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [r for r in records if _event_id(r.value) in event_ids]
    finally:
        await consumer.stop()
    return found


def test_a_poison_event_in_a_batch_is_parked_and_the_others_commit(system: System, mailbox) -> None:
    good = [_email_changed("Camille") for _ in range(5)]
    poison, poison_address = _email_changed("Zo\x00é")  # PostgreSQL refuses NUL in text: fails every time
    envelopes = [e for e, _ in good[:2]] + [poison] + [e for e, _ in good[2:]]
    asyncio.run(_publish_together(system.kafka_bootstrap, envelopes))

    for _, address in good:
        mailbox.wait_for(address, timeout=30)
    parked = asyncio.run(_dead_letters(system.kafka_bootstrap, {poison.event_id.hex}, timeout=30))
    assert len(parked) == 1
    headers = {k: v.decode() for k, v in parked[0].headers}
    assert headers["dlq.consumer"] == "notifications"
    assert headers["dlq.attempts"] == "5"
    assert headers["dlq.error_type"]
    assert mailbox.messages_to(poison_address) == []
    # Whether the broker hands the six over in one fetch or several is its choice, so the test does
    # not insist on the "batch commit failed, running its events one by one" path: the events after
    # the poison, on its partition, were delivered all the same.


def _pid(system: System, name: str) -> int | None:
    path = Path(system.env["ESPACE_VAR"]) / "run" / f"{name}.pid"
    try:
        pid = int(path.read_text())
        Path(f"/proc/{pid}").stat()
        return None if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z" else pid
    except (OSError, ValueError):
        return None


def _metric(system: System, service: str, line_start: str) -> float:
    text = httpx.get(system.metrics_url(service), timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_a_crash_between_transaction_and_offset_commit_redelivers_and_the_inbox_skips(
    system: System, gateway, registry, mailbox, hooks_dir: Path
) -> None:
    before = _pid(system, "notifications")
    assert before is not None
    (hooks_dir / "crash-notifications-consumer").touch()
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202

    deadline = time.monotonic() + 30
    while _pid(system, "notifications") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pid(system, "notifications") != before, "notifications did not exit after its transaction"
    # Back up (services.sh start only starts what is not running; a supervisor may have already).
    subprocess.run([str(LOCAL / "services.sh"), "start"], env=system.env, check=True, capture_output=True, timeout=120)

    [message] = mailbox.wait_for(member.email, timeout=30)
    time.sleep(1.5)  # a duplicate would be sent within the sender's poll
    assert len(mailbox.messages_to(member.email)) == 1
    assert _metric(system, "notifications", 'espace_consumer_events_total{group="notifications",outcome="redelivery_skipped"}') >= 1

    async def deliveries() -> int:
        conn = await asyncpg.connect(system.db_url("notifications").replace("+asyncpg", ""))
        try:
            return await conn.fetchval("SELECT count(*) FROM deliveries WHERE recipient = $1", member.email)
        finally:
            await conn.close()

    assert asyncio.run(deliveries()) == 1


def test_a_bulk_import_waits_for_a_consumer_group_behind_and_not_for_one_that_is_stuck(system: System) -> None:
    """shared.platform.backpressure on the real broker: a group 30 records behind holds a producer
    paced at 10 until it commits; a group that never moves is waited for `stall_seconds`, then not."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.structs import OffsetAndMetadata

    from claims.config import ClaimsSettings
    from shared.platform.backpressure import ConsumerPacing

    topic = f"pacing-{uuid.uuid4().hex[:8]}"
    settings = ClaimsSettings(kafka_bootstrap=system.kafka_bootstrap)
    tp = TopicPartition(topic, 0)

    async def commit(group: str, offset: int) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=system.kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: OffsetAndMetadata(offset, "")})
        finally:
            await consumer.stop()

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=system.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap)
        await producer.start()
        try:
            for i in range(30):
                await producer.send_and_wait(topic, b"x", key=str(i).encode())
        finally:
            await producer.stop()
        await commit("pacing-behind", 0)

        async with ConsumerPacing(settings, topic, max_lag=10, stall_seconds=60) as pacing:
            assert await pacing.lags() == {"pacing-behind": 30}
            waiting = asyncio.create_task(pacing.wait_for_room())
            await asyncio.sleep(1.5)
            assert not waiting.done(), "the producer went on while the group was 30 behind"
            await commit("pacing-behind", 25)
            await asyncio.wait_for(waiting, 10)  # 5 behind: room

        await commit("pacing-stuck", 0)
        async with ConsumerPacing(settings, topic, max_lag=10, stall_seconds=1.5) as pacing:
            started = time.monotonic()
            await asyncio.wait_for(pacing.wait_for_room(), 20)
            assert time.monotonic() - started >= 1.5  # waited for it, then gave up on it
            started = time.monotonic()
            await pacing.wait_for_room()
            assert time.monotonic() - started < 1.0  # and no longer waits for it

    asyncio.run(run())
