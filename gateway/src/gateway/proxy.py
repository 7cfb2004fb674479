"""The hot path: /api/v1/<service>/... forwarded to the service through one pooled aiohttp
session, as plain ASGI (no framework on this path).

Per request: match the route → declared body cap → token (unless public) → rate limits (the few
sensitive routes) → forward with the same method, path and query, the client's headers less
hop-by-hop ones, plus X-Forwarded-*, the correlation id and W3C trace context → stream the
answer back. Bodies are streamed both ways; only the small JSON body of a rate-limited route is
read first (to find the account identifier).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway import errors
from gateway.headers import connection_tokens, downstream_response_headers, upstream_request_headers
from gateway.limits import account_identifier
from gateway.routes import IDEMPOTENT_METHODS
from shared.platform.auth import unauthorized
from shared.platform.context import current_correlation_id
from shared.platform.problems import ProblemError
from shared.platform.telemetry import inject_trace_headers

if TYPE_CHECKING:
    from gateway.app import GatewayRuntime

log = logging.getLogger("gateway.proxy")

# Answers up to this size with a Content-Length are sent in one piece; larger ones, or ones
# without a length, are streamed chunk by chunk as they arrive.
SMALL_ANSWER = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class Exchange:
    """What the access log says about one request."""

    __slots__ = ("status", "upstream", "outcome")

    def __init__(self) -> None:
        self.status = 0
        self.upstream: str | None = None
        self.outcome: str | None = None


class _BodyState:
    __slots__ = ("received", "started", "too_large", "client_gone")

    def __init__(self, received: int = 0) -> None:
        self.received = received
        self.started = False
        self.too_large = False
        self.client_gone = False


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def _stream_body(first: bytes, receive: Receive, state: _BodyState, cap: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, stopped (which aborts the upstream request) as soon as it
    passes the cap or the client goes away."""
    state.started = True
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            state.client_gone = True
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            state.received += len(chunk)
            if state.received > cap:
                state.too_large = True
                raise BodyTooLarge()
            yield chunk
        if not message.get("more_body", False):
            return


async def _read_capped(receive: Receive, cap: int, state: _BodyState) -> bytes | None:
    """The whole (small) body, or None when it passes the cap or the client went away."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            state.client_gone = True
            return None
        chunk = message.get("body", b"")
        if chunk:
            state.received += len(chunk)
            if state.received > cap:
                state.too_large = True
                return None
            parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def client_address(scope: Scope, forwarded_for: bytes | None, trusted_hops: int) -> tuple[str, str]:
    """(client IP for limits, X-Forwarded-For to send). With no trusted proxy in front, the socket
    peer is the client and a client-sent X-Forwarded-For is dropped (it could be forged)."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if trusted_hops <= 0 or not forwarded_for:
        return peer, peer
    chain = [p.strip() for p in forwarded_for.decode("latin-1").split(",") if p.strip()]
    chain.append(peer)
    client = chain[-(trusted_hops + 1)] if len(chain) > trusted_hops else chain[0]
    return client, ", ".join(chain)


class Proxy:
    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime
        self.routes = runtime.routes
        self.verifier = runtime.verifier
        self.limiter = runtime.limiter
        self.trusted_hops = runtime.settings.trusted_proxy_hops

    async def handle(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        match = self.routes.match(method, path)
        if match is None:
            await self._answer(errors.not_found(), scope, receive, send, exchange, "no_route")
            return
        allowed = self.runtime.openapi.methods.at(path)
        if allowed is not None and method not in allowed:
            await self._answer(
                errors.method_not_allowed(method, allowed), scope, receive, send, exchange, "method_not_allowed"
            )
            return
        upstream = match.upstream
        exchange.upstream = upstream.name
        session = self.runtime.session
        if session is None or session.closed:
            await self._answer(errors.gateway_not_ready(), scope, receive, send, exchange, "not_ready")
            return

        authorization = content_length = transfer_encoding = forwarded_for = None
        forwarded_proto = forwarded_host = host = None
        expects_continue = False
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        has_connection_header = False
        for name, value in raw_headers:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                transfer_encoding = value
            elif name == b"host":
                host = value
            elif name == b"connection":
                has_connection_header = True
            elif name == b"expect":
                expects_continue = value.lower() == b"100-continue"
            elif name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name == b"x-forwarded-host":
                forwarded_host = value

        # 1. Declared body size, before reading anything.
        cap = upstream.max_body
        declared = 0
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                await self._answer(errors.bad_content_length(), scope, receive, send, exchange, "bad_length")
                return
            if declared > cap:
                # A client waiting for "100 Continue" has sent nothing: close. A body not much
                # over the cap is left for uvicorn to discard, so the client reads the answer.
                close = expects_continue or declared > 2 * cap
                await self._answer(
                    errors.payload_too_large(cap, close=close), scope, receive, send, exchange, "too_large"
                )
                return
        has_body = declared > 0 or transfer_encoding is not None

        # 2. Token, unless the route is public: an agent's on back-office routes, a member's on
        # every other one. The header is still forwarded: services verify too.
        if not match.public:
            try:
                scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise_missing()
                await (self.verifier.verify_agent if match.backoffice else self.verifier.verify)(token.strip())
            except ProblemError as exc:
                await self._answer(errors.from_error(exc), scope, receive, send, exchange, "invalid_token")
                return

        client_ip, forward_chain = client_address(
            scope, forwarded_for if self.trusted_hops > 0 else None, self.trusted_hops
        )

        # 3. Body: read whole only for a rate-limited route; otherwise stream it.
        state = _BodyState()
        data: bytes | AsyncIterator[bytes] | None = None
        if match.account_fields is not None:
            route = f"{method} {path}"
            decision = await self.limiter.check_ip(route, client_ip)
            if not decision.allowed:
                await self._answer(
                    errors.too_many_requests(decision.retry_after_s), scope, receive, send, exchange, "rate_limited_ip"
                )
                return
            if has_body:
                data = await _read_capped(receive, cap, state)
                if data is None:
                    if state.too_large:
                        await self._answer(errors.payload_too_large(cap), scope, receive, send, exchange, "too_large")
                    else:
                        exchange.outcome = "client_gone"
                    return
                identifier = account_identifier(data, match.account_fields)
                if identifier is not None:
                    decision = await self.limiter.check_account(route, identifier)
                    if not decision.allowed:
                        await self._answer(
                            errors.too_many_requests(decision.retry_after_s),
                            scope,
                            receive,
                            send,
                            exchange,
                            "rate_limited_account",
                        )
                        return
        elif has_body:
            first = await receive()
            if first["type"] == "http.disconnect":
                exchange.outcome = "client_gone"
                return
            chunk = first.get("body", b"")
            state.received = len(chunk)
            if state.received > cap:
                await self._answer(errors.payload_too_large(cap), scope, receive, send, exchange, "too_large")
                return
            data = chunk if not first.get("more_body", False) else _stream_body(chunk, receive, state, cap)

        # 4. Headers to the service.
        extra_drop = connection_tokens(raw_headers) if has_connection_header else None
        headers = upstream_request_headers(raw_headers, extra_drop)
        if isinstance(data, AsyncIterator) and content_length is not None:
            headers.append(("Content-Length", content_length.decode("latin-1")))
        elif data is None and content_length is not None:
            headers.append(("Content-Length", "0"))
        headers.append(("X-Forwarded-For", forward_chain))
        trusted = self.trusted_hops > 0
        proto = forwarded_proto if trusted and forwarded_proto else scope.get("scheme", "http").encode()
        headers.append(("X-Forwarded-Proto", proto.decode("latin-1")))
        fwd_host = forwarded_host if trusted and forwarded_host else host
        if fwd_host:
            headers.append(("X-Forwarded-Host", fwd_host.decode("latin-1")))
        correlation_id = current_correlation_id()
        if correlation_id:
            headers.append(("X-Correlation-ID", correlation_id))
        headers.extend(inject_trace_headers({}).items())

        raw_path: bytes = scope.get("raw_path") or path.encode()
        query: bytes = scope.get("query_string", b"")
        target = upstream.base_url + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        url = URL(target, encoded=True)

        # 5. Forward; idempotent methods get one more try when the connection itself failed.
        replayable = not isinstance(data, AsyncIterator)
        attempts = 2 if method in IDEMPOTENT_METHODS and replayable else 1
        response: aiohttp.ClientResponse | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = await session.request(
                    method, url, headers=headers, data=data, timeout=upstream.timeout, allow_redirects=False
                )
                break
            except aiohttp.ConnectionTimeoutError:
                if attempt < attempts:
                    continue
                await self._answer(
                    errors.upstream_timeout(), scope, receive, send, exchange, "upstream_connect_timeout"
                )
                return
            except TimeoutError:  # no answer within the route's timeout (aiohttp's or asyncio's)
                if state.client_gone:
                    exchange.outcome = "client_gone"
                    return
                await self._answer(errors.upstream_timeout(), scope, receive, send, exchange, "upstream_timeout")
                return
            except aiohttp.ClientConnectorError:
                if attempt < attempts:
                    continue
                await self._answer(
                    errors.upstream_unavailable(), scope, receive, send, exchange, "upstream_unreachable"
                )
                return
            except (aiohttp.ClientError, BodyTooLarge, ClientGone) as exc:
                if state.too_large:
                    await self._answer(errors.payload_too_large(cap), scope, receive, send, exchange, "too_large")
                    return
                if state.client_gone:
                    exchange.outcome = "client_gone"
                    return
                log.warning(
                    "upstream request failed", extra={"upstream": upstream.name, "error_type": type(exc).__name__}
                )
                await self._answer(errors.upstream_unavailable(), scope, receive, send, exchange, "upstream_error")
                return
        assert response is not None

        # 6. Stream the answer back.
        try:
            status = exchange.status = response.status
            out_headers = downstream_response_headers(response.raw_headers)
            if status in NO_BODY_STATUSES:
                # A 304 may carry the representation's length; there is no body to match it.
                out_headers = [(n, v) for n, v in out_headers if n != b"content-length"]
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            length = response.content_length
            if method == "HEAD" or length == 0 or status in NO_BODY_STATUSES:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif length is not None and length <= SMALL_ANSWER:
                # A small answer of known size goes out in one write; memory stays bounded.
                await send({"type": "http.response.body", "body": await response.read(), "more_body": False})
            else:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Headers are gone already: all that can be done is to cut the connection so the
            # client sees a truncated answer rather than a complete-looking one.
            exchange.outcome = "upstream_broke_stream"
            log.warning(
                "upstream answer cut short", extra={"upstream": upstream.name, "error_type": type(exc).__name__}
            )
            raise
        finally:
            response.release()

    async def _answer(
        self, response: Response, scope: Scope, receive: Receive, send: Send, exchange: Exchange, outcome: str
    ) -> None:
        exchange.outcome = outcome
        await response(scope, receive, send)


def raise_missing() -> None:
    raise unauthorized("Connectez-vous pour accéder à cette page.")
