"""The ASGI middleware in front of every service and the gateway: correlation id, server span and
HTTP metrics.

Its own module, so the gateway (no database, no Kafka) can use it without importing them."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.platform.context import CORRELATION_HEADER, accept_or_new_correlation_id, correlation_id_var
from shared.platform.metrics import HttpTimer, route_template
from shared.platform.telemetry import extract_trace_context, tracer

# What ingress controllers (ingress-nginx, Envoy) set: taken as the correlation id when the
# caller gave none, and returned under its own name too.
REQUEST_ID_HEADER = "x-request-id"


# FastAPI's own OpenTelemetry (0.16x, on by default) would make a second server span beside this
# middleware's, three more per request (dependencies, endpoint, serialization), and log
# validation failures with their messages: every FastAPI app here is built with this.
FASTAPI_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class RequestContextMiddleware:
    """Correlation id (accepted or made, returned, put in logs and events), a server span, and
    the request counted by route template and status.

    Pure ASGI rather than BaseHTTPMiddleware: it does not buffer bodies and costs less per request.
    Span names use the method and path without the query string, where secrets could hide.
    """

    def __init__(self, app: ASGIApp, service: str, route_of: Callable[[Scope], str] = route_template) -> None:
        self.app = app
        self.tracer = tracer(f"{service}.http")
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER)
        correlation_id = accept_or_new_correlation_id(headers.get(CORRELATION_HEADER) or request_id)
        token = correlation_id_var.set(correlation_id)
        timer = HttpTimer(scope["method"])
        route = "unmatched"
        echoed = [(CORRELATION_HEADER.encode(), correlation_id.encode())]
        if request_id and CORRELATION_HEADER not in headers and request_id == correlation_id:
            echoed.append((REQUEST_ID_HEADER.encode(), correlation_id.encode()))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                timer.status = message["status"]
                message["headers"] = [*message.get("headers", []), *echoed]
            await send(message)

        try:
            with self.tracer.start_as_current_span(
                f"{scope['method']} {scope['path']}",
                context=extract_trace_context(headers),
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": scope["method"], "url.path": scope["path"],
                            "espace.correlation_id": correlation_id},
            ):
                await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)
            timer.done(self.route_of(scope))
