"""A bulk producer (claims' NOEMIE import: 100,000 lines in one command) paced on the consumers
of its events, so that it goes no faster than they do and their queues stay short: each event
is then handled seconds after it was recorded, instead of waiting behind the whole file.

The producer asks, between its batches, how many records of its topic the consumer groups have
not yet committed; while one group is further behind than `max_lag`, it waits. The consumers push
back in turn where their own effects queue up (notifications holds its next batch while its
e-mails to send pile up), so the whole chain runs at the pace of its slowest step.

Pacing is a throttle, never a lock: a group that makes no progress for `stall_seconds` (its
service stopped, a group left behind by an old deployment) is no longer waited for during this
run, and a broker that cannot be asked leaves the producer unpaced (both said once in the log).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.platform.settings import ServiceSettings

log = logging.getLogger(__name__)


def kafka_client_options(settings: ServiceSettings) -> dict:
    """aiokafka's connection options for the service's cluster (as make_broker connects)."""
    options: dict = {"bootstrap_servers": settings.kafka_bootstrap, "request_timeout_ms": 5000}
    if settings.kafka_sasl_username:
        options |= {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else "",
            "ssl_context": ssl.create_default_context(cafile=settings.kafka_ca_file),
        }
    return options


class ConsumerPacing:
    def __init__(self, settings: ServiceSettings, topic: str, *, max_lag: int, stall_seconds: float = 30.0) -> None:
        self.settings, self.topic, self.max_lag, self.stall_seconds = settings, topic, max_lag, stall_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._progress: dict[str, tuple[dict[TopicPartition, int], float]] = {}  # offsets seen, when they last moved
        self._ignored: set[str] = set()
        self._off = max_lag <= 0

    async def __aenter__(self) -> ConsumerPacing:
        if self._off:
            return self
        try:
            options = kafka_client_options(self.settings)
            self._admin = AIOKafkaAdminClient(**options)
            self._ends = AIOKafkaConsumer(**options, enable_auto_commit=False)
            await asyncio.wait_for(self._admin.start(), 10)
            await asyncio.wait_for(self._ends.start(), 10)
            [described] = await asyncio.wait_for(self._admin.describe_topics([self.topic]), 10)
            self._partitions = [TopicPartition(self.topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])]
        except Exception as exc:
            log.warning("broker not reachable: the import is not paced on its consumers",
                        extra={"error_type": type(exc).__name__, "topic": self.topic})
            await self._close()
            self._off = True
        return self

    async def __aexit__(self, *_exc) -> None:
        await self._close()

    async def _close(self) -> None:
        for close in (self._ends.stop if self._ends else None, self._admin.close if self._admin else None):
            if close is not None:
                try:
                    await asyncio.wait_for(close(), 5)
                except Exception:  # closing is best effort
                    pass
        self._admin = self._ends = None

    async def lags(self) -> dict[str, int]:
        """Records of the topic each group that reads it has not yet committed."""
        assert self._admin is not None and self._ends is not None
        ends = await self._ends.end_offsets(self._partitions)
        lags: dict[str, int] = {}
        now = time.monotonic()
        for group, _ in await self._admin.list_consumer_groups():
            offsets = {tp: o.offset for tp, o in (await self._admin.list_consumer_group_offsets(group, partitions=self._partitions)).items()
                       if o.offset >= 0}
            if not offsets:
                continue  # the group does not read this topic
            seen = self._progress.get(group)
            if seen is None or seen[0] != offsets:
                self._progress[group] = (offsets, now)
            lags[group] = sum(max(0, ends[tp] - offsets.get(tp, 0)) for tp in self._partitions)
        return lags

    async def wait_for_room(self) -> None:
        """Returns once every group still followed is at most `max_lag` records behind."""
        if self._off:
            return
        try:
            while True:
                behind = {g: lag for g, lag in (await self.lags()).items() if lag > self.max_lag and g not in self._ignored}
                if not behind:
                    return
                now = time.monotonic()
                for group in behind:
                    if now - self._progress[group][1] > self.stall_seconds:
                        self._ignored.add(group)
                        log.warning("consumer group makes no progress: no longer waited for by this import",
                                    extra={"group": group, "topic": self.topic, "lag": behind[group]})
                await asyncio.sleep(0.1)
        except Exception as exc:
            log.warning("consumer lag unreadable: the import goes on unpaced",
                        extra={"error_type": type(exc).__name__, "topic": self.topic})
            await self._close()
            self._off = True
