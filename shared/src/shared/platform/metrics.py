"""Prometheus metrics, served on each process's own port (`<SVC>_METRICS_PORT`), never through
the gateway: what a scraper inside the cluster reads, not something the public can.

Series (every name starts with `espace_`):
- http_requests_total{method,route,status}, http_request_duration_seconds{method,route}: route is
  the route template (`/api/v1/claims/claims/{claim_id}`), never the raw path (ids, tokens).
- consumer_lag{group,topic,partition}: the partition's high watermark minus the group's committed
  offset, read at scrape time; consumer_events_total{group,outcome}; consumer_batch_size{group}.
- dead_lettered_total{group,topic}.
- outbox_backlog, outbox_oldest_pending_age_seconds: refreshed from the database at each scrape.
- emails_sent_total{kind}, emails_failed_total{kind}, emails_retried_total{kind} (notifications).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Scope

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("espace_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "espace_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_EVENTS = Counter("espace_consumer_events", "Events taken by a consumer group", ["group", "outcome"])
CONSUMER_BATCH = Histogram(
    "espace_consumer_batch_size", "Records per consumed batch", ["group"], buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500)
)
DEAD_LETTERED = Counter("espace_dead_lettered", "Events parked on a dead-letter topic", ["group", "topic"])
OUTBOX_BACKLOG = Gauge("espace_outbox_backlog", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge("espace_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row")
EMAILS_SENT = Counter("espace_emails_sent", "E-mails the SMTP relay accepted", ["kind"])
EMAILS_FAILED = Counter("espace_emails_failed", "E-mails given up after their last attempt", ["kind"])
EMAILS_RETRIED = Counter("espace_emails_retried", "E-mail attempts that failed and will be retried", ["kind"])

_consumers: weakref.WeakSet = weakref.WeakSet()


def register_consumer(runner: Any) -> None:
    _consumers.add(runner)


def consumer_batch(group: str, size: int, handled: int, skipped: int) -> None:
    CONSUMER_BATCH.labels(group).observe(size)
    if handled:
        CONSUMER_EVENTS.labels(group, "handled").inc(handled)
    if skipped:
        CONSUMER_EVENTS.labels(group, "redelivery_skipped").inc(skipped)


def dead_lettered(group: str, topic: str) -> None:
    DEAD_LETTERED.labels(group, topic).inc()


class _LagCollector(Collector):
    """Lag per group and partition at scrape time, from what the consumer already knows: the
    high watermark of each fetch response and the offsets this process committed."""

    def collect(self):
        family = GaugeMetricFamily("espace_consumer_lag", "Records not yet committed by the group",
                                   labels=["group", "topic", "partition"])
        for runner in list(_consumers):
            consumer = runner.kafka_consumer
            if consumer is None:
                continue
            try:
                assignment = consumer.assignment()
            except Exception:  # stopped or rebalancing
                continue
            for tp in assignment:
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                committed = runner.committed.get((tp.topic, tp.partition))
                if committed is None:
                    continue
                family.add_metric([runner.consumer.name, tp.topic, str(tp.partition)], max(highwater - committed, 0))
        yield family


REGISTRY.register(_LagCollector())


def route_template(scope: Scope) -> str:
    """The matched route's template; 'unmatched' for 404s, so paths never become labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class HttpTimer:
    """What the request middleware records for one request."""

    __slots__ = ("method", "start", "status")

    def __init__(self, method: str) -> None:
        self.method = method
        self.start = time.perf_counter()
        self.status = 500

    def done(self, route: str) -> None:
        HTTP_REQUESTS.labels(self.method, route, str(self.status)).inc()
        HTTP_DURATION.labels(self.method, route).observe(time.perf_counter() - self.start)


Refresh = Callable[[], Awaitable[None]]


class MetricsServer:
    """A minimal HTTP/1.0 server for GET /metrics on its own port, inside the service's event
    loop (refreshers that need the database run before each answer)."""

    def __init__(self, host: str, port: int, refreshers: list[Refresh] | None = None) -> None:
        self.host = host
        self.port = port
        self.refreshers = refreshers or []
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, self.host, self.port)
        log.info("metrics served", extra={"metrics_port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            if len(parts) < 2 or parts[0] != "GET" or parts[1].split("?")[0] != "/metrics":
                writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                for refresh in self.refreshers:
                    try:
                        await asyncio.wait_for(refresh(), 2)
                    except Exception as exc:  # a scrape still answers with what it has
                        log.debug("metrics refresh failed", extra={"error_type": type(exc).__name__})
                body = generate_latest(REGISTRY)
                writer.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: " + CONTENT_TYPE_LATEST.encode()
                    + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
            await writer.drain()
        except Exception:  # a broken scrape connection is not the service's problem
            pass
        finally:
            writer.close()
