"""Wiring: settings → route table, token verifier, rate limiter, OpenAPI aggregator, and one
pooled aiohttp session opened in the lifespan.

Layers, outside in:
  shared RequestContextMiddleware  correlation id (accepted or made, returned) + server span
  GatewayApp                       security headers, CORS, access log; /api/* → Proxy (plain
                                   ASGI), everything else → the small FastAPI app below
  FastAPI                          /healthz, /readyz, /openapi.json (merged), /docs
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors
from gateway.config import GatewaySettings
from gateway.headers import Cors, SecurityHeaders
from gateway.limits import RateLimiter, RateLimitStore
from gateway.openapi import OpenApiAggregator
from gateway.proxy import Exchange, Proxy
from gateway.routes import API_PREFIX, PUBLIC_ROUTES, RouteTable
from shared.platform.metrics import MetricsServer, route_template
from shared.platform.request_context import FASTAPI_TELEMETRY_OFF, RequestContextMiddleware
from gateway.web import WebForwarder
from shared.platform.auth import JwksKeySource, KeySource, TokenVerifier
from shared.platform.heap import freeze_startup_heap
from shared.platform.logging import setup_logging
from shared.platform.problems import install_problem_handlers, problem_response
from shared.platform.telemetry import setup_telemetry

log = logging.getLogger("gateway")
access_log = logging.getLogger("gateway.access")


class GatewayRuntime:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        key_source: KeySource | None = None,
        limiter_store: RateLimitStore | None = None,
    ) -> None:
        self.settings = settings
        self.routes = RouteTable(settings)
        self.verifier = TokenVerifier(
            key_source or JwksKeySource(settings.effective_jwks_url), remember_s=settings.token_cache_s
        )
        self.limiter = RateLimiter(settings, limiter_store)
        self.openapi = OpenApiAggregator(settings)
        self.session: aiohttp.ClientSession | None = None
        self.metrics: MetricsServer | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.pool_limit,
            limit_per_host=s.pool_limit_per_host,
            keepalive_timeout=s.upstream_keepalive_s,
            ttl_dns_cache=60,
        )
        return aiohttp.ClientSession(
            connector=connector,
            # Never keep cookies from one member's answer for another's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies pass through as the service encoded them.
            auto_decompress=False,
            # Send only what the client sent.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=False,
            raise_for_status=False,
        )

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        self.session = self._new_session()
        self.openapi.start(self.session)
        if self.settings.metrics_port:
            self.metrics = MetricsServer(self.settings.host, self.settings.metrics_port)
            await self.metrics.start()
        freeze_startup_heap()
        log.info("gateway started", extra={"upstreams": self.settings.service_urls()})
        try:
            yield
        finally:
            await self.openapi.stop()
            if self.metrics is not None:
                await self.metrics.stop()
            session, self.session = self.session, None
            await session.close()

    def ready(self) -> bool:
        return self.session is not None and not self.session.closed

    async def upstream_readiness(self) -> dict[str, str]:
        if self.session is None:
            return {}
        timeout = aiohttp.ClientTimeout(total=self.settings.readiness_timeout_s)
        session = self.session

        async def check(url: str) -> str:
            try:
                async with session.get(url + "/readyz", timeout=timeout) as response:
                    return "ok" if response.status == 200 else "down"
            except (aiohttp.ClientError, TimeoutError):
                return "down"

        services = self.settings.service_urls()
        results = await asyncio.gather(*(check(url) for url in services.values()))
        return dict(zip(services, results, strict=True))


def own_router(runtime: GatewayRuntime, docs_enabled: bool) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        # Ready = able to forward. The services' own readiness is information only: the gateway
        # answers 502/504 for a service that is down, and must not be pulled from the load
        # balancer because one service is.
        ready = runtime.ready()
        body: dict[str, Any] = {
            "status": "ok" if ready else "down",
            "checks": {"client_session": "ok" if ready else "down"},
            "upstreams": await runtime.upstream_readiness(),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(await runtime.openapi.current())

    if docs_enabled:

        @router.get("/docs")
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Espace — API")

    return router


# The gateway's own routes; everything else outside /api/ is web's.
OWN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})


def send_marking_status(send: Send, exchange: Exchange) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
        await send(message)

    return wrapped


class GatewayApp:
    """Every answer gets the security headers (and CORS headers for an allowed origin) and one
    access-log line; /api/* goes to the proxy, the rest to FastAPI."""

    def __init__(self, runtime: GatewayRuntime, api: ASGIApp) -> None:
        self.api = api
        self.proxy = Proxy(runtime)
        self.security = SecurityHeaders(runtime.settings)
        self.cors = Cors(runtime.settings)
        self.web = WebForwarder(runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        exchange = Exchange()

        origin = request_method = request_headers = None
        if self.cors.enabled or method == "OPTIONS":
            for name, value in scope["headers"]:
                if name == b"origin":
                    origin = value
                elif name == b"access-control-request-method":
                    request_method = value
                elif name == b"access-control-request-headers":
                    request_headers = value
        extra = self.security.for_path(path)
        origin_allowed = self.cors.allowed(origin)
        if origin_allowed:
            extra = [*extra, Cors.VARY, *self.cors.response_headers(origin)]  # type: ignore[arg-type]
        elif self.cors.enabled:
            extra = [*extra, Cors.VARY]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            if method == "OPTIONS" and origin is not None and request_method is not None:
                await self._preflight(origin, request_headers, origin_allowed, scope, receive, send, exchange)
            elif path.startswith("/api/"):
                await self.proxy.handle(scope, receive, send_with_headers, exchange)
            elif self.web.enabled and path not in OWN_PATHS:
                # Pages: web sets its own security headers (a CSP fit for pages).
                await self.web.handle(scope, receive, send_marking_status(send, exchange), exchange)
            else:
                await self.api(scope, receive, send_with_headers)
        except Exception as exc:
            if exchange.status:
                raise  # the answer has started: uvicorn cuts the connection
            exchange.outcome = "gateway_error"
            log.exception("gateway error", extra={"error_type": type(exc).__name__})
            response = problem_response(
                500, "internal_error", "Erreur interne", "Une erreur inattendue est survenue. Réessayez plus tard."
            )
            await response(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": path,  # never the query string
                    "status": exchange.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "upstream": exchange.upstream,
                    "outcome": exchange.outcome,
                },
            )

    async def _preflight(
        self,
        origin: bytes,
        request_headers: bytes | None,
        origin_allowed: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
    ) -> None:
        headers = self.cors.preflight_headers(origin, request_headers) if origin_allowed else None
        security = self.security.for_path(scope["path"])

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message["headers"] = [*message.get("headers", ()), *security]
            await send(message)

        if headers is None:
            exchange.outcome = "cors_refused"
            await errors.origin_not_allowed()(scope, receive, send_marked)
            return
        exchange.outcome = "preflight"
        await send_marked({"type": "http.response.start", "status": 204, "headers": headers})
        await send_marked({"type": "http.response.body", "body": b"", "more_body": False})


def route_label(settings: GatewaySettings):
    """The metrics label of a request: public routes by path, the rest by service (paths carry
    ids and must not become labels), own routes by template, everything else `web`."""
    services = frozenset(settings.service_urls())

    def label(scope) -> str:
        path = scope["path"]
        if (scope["method"], path) in PUBLIC_ROUTES:
            return path
        if path.startswith(API_PREFIX):
            service = path[len(API_PREFIX) :].split("/", 1)[0]
            return f"{API_PREFIX}{service}/*" if service in services else f"{API_PREFIX}*"
        route = route_template(scope)
        return route if route != "unmatched" else "web"

    return label


def create_app(
    settings: GatewaySettings | None = None,
    *,
    key_source: KeySource | None = None,
    limiter_store: RateLimitStore | None = None,
) -> ASGIApp:
    settings = settings or GatewaySettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_telemetry(settings.service_name)
    runtime = GatewayRuntime(settings, key_source=key_source, limiter_store=limiter_store)
    api = FastAPI(
        telemetry=FASTAPI_TELEMETRY_OFF,
        title="Espace — gateway",
        lifespan=runtime.lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.runtime = runtime
    install_problem_handlers(api)
    api.include_router(own_router(runtime, settings.docs_enabled))
    app = RequestContextMiddleware(
        GatewayApp(runtime, api), service=settings.service_name, route_of=route_label(settings)
    )
    app.runtime = runtime  # type: ignore[attr-defined]  # for tests and tooling
    return app
