"""The gateway's public API, as any front end sees it: one pooled aiohttp session, bearer tokens,
problem+json errors. web never talks to a service or a database directly."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from shared.platform.context import current_correlation_id
from shared.platform.telemetry import inject_trace_headers
from web.config import WebSettings
from web import timing

log = logging.getLogger("web.api")

UNAVAILABLE = {
    "code": "api_unavailable",
    "title": "Service momentanément indisponible",
    "detail": "Le service est momentanément indisponible. Réessayez dans quelques instants.",
    "errors": [],
}


@dataclass
class ApiAnswer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return self.body.get("code", "") if isinstance(self.body, dict) else ""

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or "")
        return ""

    def field_errors(self) -> dict[str, str]:
        """field → French message (the first per field), from a problem's `errors`."""
        out: dict[str, str] = {}
        if isinstance(self.body, dict):
            for err in self.body.get("errors") or []:
                name = str(err.get("field", ""))
                if name and name not in out:
                    out[name] = str(err.get("message", ""))
        return out


class Api:
    def __init__(self, settings: WebSettings) -> None:
        self.base = settings.gateway_url.rstrip("/")
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s,
                                             sock_read=settings.timeout_s, connect=settings.timeout_s)
        self.upload_timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s,
                                                    sock_read=settings.upload_timeout_s)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.settings.pool_limit, keepalive_timeout=4.0, ttl_dns_cache=60)
        self.session = aiohttp.ClientSession(
            connector=connector,
            # One member's cookies must never reach another's request (the API sets none anyway).
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
        )

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        data: Any = None,
        client_ip: str | None = None,
        upload: bool = False,
    ) -> ApiAnswer:
        assert self.session is not None, "Api.start() not called"
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        correlation_id = current_correlation_id()
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        # The page's span is the parent of the gateway's: one trace from the browser to claims.
        inject_trace_headers(headers)
        if params:
            params = {k: str(v) for k, v in params.items() if v not in (None, "")}
        timing.call_started()
        try:
            async with self.session.request(
                method,
                self.base + path,
                headers=headers,
                json=json_body,
                data=data,
                params=params or None,
                timeout=self.upload_timeout if upload else self.timeout,
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                answer = ApiAnswer(response.status, None, {k.lower(): v for k, v in response.headers.items()})
                if raw:
                    try:
                        answer.body = json.loads(raw)
                    except ValueError:
                        answer.body = None
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Never the URL: a query could carry something personal.
            log.warning("api call failed", extra={"error_type": type(exc).__name__, "method": method})
            return ApiAnswer(503, dict(UNAVAILABLE))
        finally:
            timing.call_ended()
