"""The ASGI middleware in front of every service and the gateway: correlation id and server span.

Its own module, so the gateway (no database, no Kafka) can use it without importing them."""

from __future__ import annotations

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.platform.context import CORRELATION_HEADER, accept_or_new_correlation_id, correlation_id_var
from shared.platform.telemetry import extract_trace_context, tracer


class RequestContextMiddleware:
    """Correlation id (accepted or made, returned, put in logs and events) and a server span.

    Pure ASGI rather than BaseHTTPMiddleware: it does not buffer bodies and costs less per request.
    Span names use the method and path without the query string, where secrets could hide.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.tracer = tracer(f"{service}.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        correlation_id = accept_or_new_correlation_id(headers.get(CORRELATION_HEADER))
        token = correlation_id_var.set(correlation_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (CORRELATION_HEADER.encode(), correlation_id.encode())]
            await send(message)

        try:
            with self.tracer.start_as_current_span(
                f"{scope['method']} {scope['path']}",
                context=extract_trace_context(headers),
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
            ):
                await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)
