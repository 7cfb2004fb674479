"""Everything outside /api/ (and the gateway's own /healthz, /readyz, /openapi.json, /docs) goes
to the web front end, so one address serves the member space and the links in e-mails work as
they are. Plain ASGI, the same pooled session as the API proxy, bodies streamed both ways.

The gateway adds no headers of its own to these answers: web sets a CSP fit for pages (the
API's `default-src 'none'` would forbid its stylesheet). The access log still drops the query
string (activation and reset tokens arrive in it)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.headers import HOP_BY_HOP, connection_tokens, upstream_request_headers
from gateway.proxy import SMALL_ANSWER, BodyTooLarge, ClientGone, Exchange, _BodyState, _stream_body, client_address
from shared.platform.context import current_correlation_id
from shared.platform.telemetry import inject_trace_headers

if TYPE_CHECKING:
    from gateway.app import GatewayRuntime

log = logging.getLogger("gateway.web")

_DROP_FROM_WEB = HOP_BY_HOP | {b"date", b"server", b"x-correlation-id"}

_PAGE_CSP = (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")


def _unavailable(status: int, text: str) -> HTMLResponse:
    # No stylesheet to load: the answer stands alone, in French, with its own strict CSP.
    html = (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>Espace adhérent momentanément indisponible</title>'
        f"</head><body><main><h1>Espace adhérent momentanément indisponible</h1><p>{text}</p></main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={
        "content-security-policy": _PAGE_CSP[1].decode(), "cache-control": "no-store", "retry-after": "5"})


class WebForwarder:
    def __init__(self, runtime: GatewayRuntime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.base_url = (settings.web_url or "").rstrip("/")
        self.enabled = bool(self.base_url)
        self.cap = settings.upload_max_body_bytes  # invoices are posted through web's form
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.upload_timeout_s, sock_connect=settings.connect_timeout_s,
            sock_read=settings.upload_timeout_s,
        )
        self.trusted_hops = settings.trusted_proxy_hops

    async def handle(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        exchange.upstream = "web"
        session = self.runtime.session
        if session is None or session.closed:
            exchange.outcome = "not_ready"
            await _unavailable(503, "Réessayez dans quelques instants.")(scope, receive, send)
            return
        method: str = scope["method"]
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        content_length = transfer_encoding = forwarded_for = host = None
        for name, value in raw_headers:
            if name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                transfer_encoding = value
            elif name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            elif name == b"host":
                host = value
        declared = 0
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                declared = -1
            if declared < 0 or declared > self.cap:
                exchange.outcome = "too_large"
                await _unavailable(413, "Le contenu envoyé est trop volumineux.")(scope, receive, send)
                return
        state = _BodyState()
        data: bytes | AsyncIterator[bytes] | None = None
        if declared > 0 or transfer_encoding is not None:
            data = _stream_body(b"", receive, state, self.cap)

        headers = upstream_request_headers(raw_headers, connection_tokens(raw_headers))
        if content_length is not None:
            headers.append(("Content-Length", content_length.decode("latin-1")))
        _, chain = client_address(scope, forwarded_for if self.trusted_hops > 0 else None, self.trusted_hops)
        headers.append(("X-Forwarded-For", chain))
        headers.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
        if host:
            # web checks a form's Origin against the host the browser used.
            headers.append(("X-Forwarded-Host", host.decode("latin-1")))
        correlation_id = current_correlation_id()
        if correlation_id:
            headers.append(("X-Correlation-ID", correlation_id))
        headers.extend(inject_trace_headers({}).items())

        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        target = self.base_url + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        try:
            response = await session.request(
                method, URL(target, encoded=True), headers=headers, data=data, timeout=self.timeout,
                allow_redirects=False, auto_decompress=False,
            )
        except (aiohttp.ClientError, TimeoutError, BodyTooLarge, ClientGone) as exc:
            if state.client_gone:
                exchange.outcome = "client_gone"
                return
            exchange.outcome = "too_large" if state.too_large else "web_unreachable"
            log.warning("web request failed", extra={"error_type": type(exc).__name__})
            status, text = (413, "Le contenu envoyé est trop volumineux.") if state.too_large else (
                502, "Réessayez dans quelques instants.")
            await _unavailable(status, text)(scope, receive, send)
            return
        try:
            exchange.status = response.status
            drop = _DROP_FROM_WEB
            out = []
            for name, value in response.raw_headers:
                lname = name.lower()
                if lname == b"connection":
                    drop = drop | {t.strip().lower() for t in value.split(b",") if t.strip()}
            for name, value in response.raw_headers:
                lname = name.lower()
                if lname not in drop:
                    out.append((lname, value))
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            length = response.content_length
            if method == "HEAD" or response.status in (204, 304) or length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif length is not None and length <= SMALL_ANSWER:
                # A page is a few kilobytes with its length: one write instead of one per chunk.
                await send({"type": "http.response.body", "body": await response.read(), "more_body": False})
            else:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            exchange.outcome = "forwarded"
        except (aiohttp.ClientError, TimeoutError):
            exchange.outcome = "web_broke_stream"
            raise
        finally:
            response.release()
