"""Dead-letter topics: put the messages parked on `<topic>.dlq` back on `<topic>`, once the cause
that parked them is fixed.

    python -m shared.platform.dlq replay identity.members.v1 [--bootstrap host:port] [--all]
    make replay-dlq TOPIC=identity.members.v1

It reads `<topic>.dlq` from where the previous replay of that topic stopped (consumer group
`dlq-replay`), republishes each message to `<topic>` with its key and headers (the `dlq.*` ones
dropped, a `dlq.replayed_from` added) with acks=all and idempotence, and commits its offsets on
the dlq only once the broker acknowledged every message sent: a second run replays nothing new,
and a crash midway replays a few messages again at worst. That is harmless: every consumer
records the event ids it handled (its inbox), so an event replayed twice, or one that the other
consumer groups of the topic had already handled, has no second effect.

A message that is not an event envelope is not replayed (it would only be parked again, and
its offset is passed all the same); `--all` replays those too, e.g. after the consumers learnt
to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from shared.contracts.envelope import Envelope
from shared.contracts.topics import dead_letter

REPLAY_GROUP = "dlq-replay"
DLQ_SUFFIX = dead_letter("")


@dataclass(frozen=True)
class ReplayResult:
    dlq: str
    topic: str
    replayed: int
    not_events: int  # left parked: not an event envelope

    def summary(self) -> str:
        line = f"replayed {self.replayed} message(s) from {self.dlq} to {self.topic}"
        if self.not_events:
            line += f"; {self.not_events} left parked, not being an event envelope (--all replays them too)"
        if not self.replayed and not self.not_events:
            line += " (nothing new since the last replay)"
        return line


def _is_event(value: bytes | None) -> bool:
    try:
        Envelope.model_validate_json(value or b"")
    except ValidationError:
        return False
    return True


async def replay(bootstrap: str, topic: str, *, include_invalid: bool = False, group: str = REPLAY_GROUP) -> ReplayResult:
    """Replays what `<topic>.dlq` holds beyond the group's committed offsets (or a `.dlq` name)."""
    if topic.endswith(DLQ_SUFFIX):
        topic = topic[: -len(DLQ_SUFFIX)]
    dlq = dead_letter(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=10_000)
    await consumer.start()
    try:
        await producer.start()
        try:
            known = await consumer.topics()
            for name in (topic, dlq):
                if name not in known:
                    raise SystemExit(f"no topic {name} on {bootstrap}")
            partitions = [TopicPartition(dlq, p) for p in sorted(await producer.partitions_for(dlq))]
            # Manual assignment: offsets are stored under the group, with no group membership to
            # wait for, and nothing written after this point is taken (the next run will).
            consumer.assign(partitions)
            end = await consumer.end_offsets(partitions)
            replayed = not_events = 0
            sent = []
            for tp in partitions:
                while await consumer.position(tp) < end[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=2_000, max_records=500)
                    for record in batch.get(tp, ()):
                        if record.offset >= end[tp]:
                            break
                        if not include_invalid and not _is_event(record.value):
                            not_events += 1
                            continue
                        headers = [(k, v) for k, v in record.headers if not k.startswith("dlq.")]
                        headers.append(("dlq.replayed_from", f"{dlq}/{tp.partition}/{record.offset}".encode()))
                        sent.append(await producer.send(topic, record.value, key=record.key, headers=headers))
                        replayed += 1
            # Every send acknowledged (acks=all) before the offsets move past those messages.
            await asyncio.gather(*sent)
            await consumer.commit({tp: end[tp] for tp in partitions})
            return ReplayResult(dlq=dlq, topic=topic, replayed=replayed, not_events=not_events)
        finally:
            await producer.stop()
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.platform.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    replay_cmd = commands.add_parser("replay", help="put the messages of <topic>.dlq back on <topic>")
    replay_cmd.add_argument("topic", help="the topic, e.g. identity.members.v1 (or its .dlq)")
    replay_cmd.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    replay_cmd.add_argument("--all", action="store_true", help="replay messages that are not event envelopes too")
    args = parser.parse_args(argv)
    result = asyncio.run(replay(args.bootstrap, args.topic, include_invalid=args.all))
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
