"""The runtime every service is built from: settings → database, broker, outbox relay, token
verifier, consumers → one FastAPI app whose lifespan starts and stops them in order.

A service's `main.py` only says what is its own (migrations, routers, consumers), so every
service has the same shape and the same start-up, health, errors, logs and traces.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version
from importlib.resources.abc import Traversable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.platform.asyncapi import declare_publishers
from shared.platform.asyncapi import document as asyncapi_document
from shared.platform.auth import JWKS_PATH, JwksKeySource, KeySource, TokenVerifier, current_agent, current_member
from shared.platform.db import PLATFORM_MIGRATIONS, Database, apply_migrations
from shared.platform.health import health_router
from shared.platform.heap import freeze_startup_heap
from shared.platform.logging import setup_logging
from shared.platform.metrics import MetricsServer
from shared.platform.messaging import ConsumerRunner, EventConsumer, make_broker
from shared.platform.outbox import OutboxRelay
from shared.platform.problems import document_problems, install_problem_handlers
from shared.platform.request_context import FASTAPI_TELEMETRY_OFF, RequestContextMiddleware
from shared.platform.settings import ServiceSettings
from shared.platform.telemetry import setup_telemetry

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Traversable,
        key_source: KeySource | None = None,
    ) -> None:
        setup_logging(settings.service_name, settings.log_level)
        setup_telemetry(settings.service_name)
        self.settings = settings
        self.migrations = migrations
        self.db = Database(settings.database_url.get_secret_value())
        self.broker = make_broker(
            settings.kafka_bootstrap,
            settings.service_name,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            ca_file=settings.kafka_ca_file,
        )
        # The outbox relay publishes, not a FastStream publisher: declare what it sends, so the
        # broker's AsyncAPI document says it (shared.platform.asyncapi).
        declare_publishers(self.broker, settings.service_name)
        self.relay = OutboxRelay(self.db, self.broker, poll_seconds=settings.outbox_poll_seconds)
        self.verifier = TokenVerifier(key_source or JwksKeySource(settings.identity_url + JWKS_PATH))
        self.consumers: list[ConsumerRunner] = []
        self.metrics = (
            MetricsServer(settings.host, settings.metrics_port, refreshers=[self.relay.refresh_metrics])
            if settings.metrics_port
            else None
        )
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []

    def consume(
        self,
        consumer: EventConsumer,
        *,
        after_commit: Callable[[], None] | None = None,
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None,
        before_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.consumers.append(
            ConsumerRunner(
                consumer,
                broker=self.broker,
                db=self.db,
                max_attempts=self.settings.consumer_max_attempts,
                retry_base_seconds=self.settings.consumer_retry_base_seconds,
                batch_size=self.settings.consumer_batch_size,
                batch_wait_ms=self.settings.consumer_batch_wait_ms,
                fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
                after_commit=after_commit,
                before_commit=before_commit,
                before_batch=before_batch,
                crash_after_transaction_file=self.settings.consumer_crash_after_transaction_file,
            )
        )

    def on_startup(self, hook: Hook) -> Hook:
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self._shutdown.append(hook)
        return hook

    async def broker_ready(self) -> bool:
        return await self.broker.ping(timeout=1.0)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await apply_migrations(self.db.url, ("platform", PLATFORM_MIGRATIONS), (self.settings.service_name, self.migrations))
        await self._start_broker()
        await self.relay.start()
        if self.metrics is not None:
            await self.metrics.start()
        for hook in self._startup:
            await hook()
        freeze_startup_heap()
        log.info("service started", extra={"port": self.settings.port})
        try:
            yield
        finally:
            for hook in reversed(self._shutdown):
                await hook()
            if self.metrics is not None:
                await self.metrics.stop()
            await self.relay.stop()
            await self.broker.stop()
            await self.db.dispose()

    async def _start_broker(self, attempts: int = 30) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await self.broker.start()
                return
            except Exception as exc:
                if attempt == attempts:
                    raise
                log.warning("kafka not reachable yet", extra={"attempt": attempt, "error_type": type(exc).__name__})
                await self.broker.stop()
                await asyncio.sleep(1.0)

    def create_app(self, *, title: str, description: str, routers: list[APIRouter], version: str | None = None) -> FastAPI:
        # Each service is released on its own: its version is its package's (pyproject.toml).
        version = version or package_version(f"espace-{self.settings.service_name}")
        app = FastAPI(
            title=title, description=description, version=version, lifespan=self.lifespan,
            telemetry=FASTAPI_TELEMETRY_OFF,
        )
        app.state.runtime = self
        app.state.asyncapi = functools.cache(lambda: asyncapi_document(self, title=title, version=version))

        # Internal, like /healthz: the gateway forwards only /api/ to the services.
        @app.get("/asyncapi.json", include_in_schema=False)
        async def asyncapi() -> dict[str, Any]:
            return app.state.asyncapi()

        install_problem_handlers(app)
        app.include_router(health_router({"database": self.db.ping}, informational={"kafka": self.broker_ready}))
        for router in routers:
            app.include_router(router)
        app.add_middleware(RequestContextMiddleware, service=self.settings.service_name)
        app.openapi = truthful_openapi(app)  # type: ignore[method-assign]
        return app


def truthful_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, corrected to say what the service really answers: every error as
    problem+json with the Problem schema (422 included, never FastAPI's HTTPValidationError), and
    401 on every operation that needs a member's or an agent's access token, whether or not its route
    remembered to declare it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            protected = {
                (method.lower(), route.path_format)
                for route in app.routes
                if isinstance(route, APIRoute)
                and any(_depends_on(route.dependant, check) for check in (current_member, current_agent))
                for method in route.methods
            }
            for path, item in document.get("paths", {}).items():
                for method, operation in item.items():
                    if (method, path) in protected:
                        operation.setdefault("responses", {}).setdefault("401", {"description": "Unauthorized"})
            app.openapi_schema = document_problems(document)
        return app.openapi_schema

    return openapi


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _plain(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)  # dates, UUIDs


# Built once (json.dumps with options makes a new encoder per call).
_encode_answer = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode


def json_answer(content: dict[str, Any]) -> Response:
    """A hot read path's answer, already in the shape its route documents (`response_model`):
    written straight to JSON, without FastAPI validating and re-encoding it a second time."""
    return Response(_encode_answer(content), media_type="application/json")


async def get_runtime(request: Request) -> ServiceRuntime:
    # async, like every dependency here: FastAPI runs a plain `def` one on a worker thread, a
    # thread hop on every request for a one-line lookup.
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
