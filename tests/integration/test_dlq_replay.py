"""`make replay-dlq`: parked messages go back on their topic once, event envelopes only."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.envelope import Envelope
from shared.contracts.topics import IDENTITY_MEMBERS, dead_letter
from tests.integration.system import ROOT, System


async def _park(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(
                dead_letter(IDENTITY_MEMBERS), value, key=key,
                headers=[("dlq.consumer", b"notifications"), ("dlq.error_type", b"IntegrityError"), ("event_type", b"x")],
            )
    finally:
        await producer.stop()


async def _ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # partitions_for waits for the metadata
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in await producer.partitions_for(topic)])
    finally:
        await consumer.stop()
        await producer.stop()


async def _read_since(bootstrap: str, since: dict[TopicPartition, int]) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        records = []
        batch = await consumer.getmany(timeout_ms=3_000)
        while batch:
            records += [r for rs in batch.values() for r in rs]
            batch = await consumer.getmany(timeout_ms=500)
        return records
    finally:
        await consumer.stop()


def _replay(system: System) -> str:
    result = subprocess.run(
        ["make", "-s", "replay-dlq", f"TOPIC={IDENTITY_MEMBERS}"],
        cwd=ROOT, env={**system.env}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_replay_puts_parked_events_back_once(system: System) -> None:
    bootstrap = system.kafka_bootstrap
    _replay(system)  # whatever earlier tests parked is out of the way
    # An event type nobody consumes (consumers skip it): replaying it has no effect on the system.
    envelope = Envelope(event_type="TestReplayProbe", schema_version=1, producer="tests", payload={"n": 1})
    key = str(uuid.uuid4()).encode()
    before = asyncio.run(_ends(bootstrap, IDENTITY_MEMBERS))
    asyncio.run(_park(bootstrap, [(key, envelope.model_dump_json().encode()), (key, b"not an envelope")]))

    first = _replay(system)
    assert first.startswith(f"replayed 1 message(s) from {dead_letter(IDENTITY_MEMBERS)}"), first
    assert "1 left parked" in first, first
    replayed = [r for r in asyncio.run(_read_since(bootstrap, before)) if r.key == key]
    assert len(replayed) == 1
    assert Envelope.model_validate_json(replayed[0].value).event_id == envelope.event_id
    headers = dict(replayed[0].headers)
    assert not any(k.startswith("dlq.") and k != "dlq.replayed_from" for k in headers)
    assert headers["event_type"] == b"x"
    assert headers["dlq.replayed_from"].startswith(dead_letter(IDENTITY_MEMBERS).encode())

    second = _replay(system)
    assert second.startswith("replayed 0 message(s)"), second
    assert [r for r in asyncio.run(_read_since(bootstrap, before)) if r.key == key] == replayed
