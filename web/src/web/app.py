"""Wiring: settings → the API client (one pooled aiohttp session, opened in the lifespan) →
the pages. Outside in:
  RequestContextMiddleware  correlation id (sent on to the API) + server span
  PageHeaders               CSP fit for pages, the other security headers, no-store, Server-Timing,
                            one access-log line without the query string (link tokens, filters)
  FastAPI                   the pages, /static, /healthz, /readyz
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.platform.heap import freeze_startup_heap
from shared.platform.logging import setup_logging
from shared.platform.request_context import FASTAPI_TELEMETRY_OFF, RequestContextMiddleware
from shared.platform.telemetry import setup_telemetry
from web import timing
from web.api import Api
from web.config import WebSettings
from web.pages import identity, services, space
from web.pages.common import CsrfFailed, LoginRequired, Web

log = logging.getLogger("web")
access_log = logging.getLogger("web.access")

STATIC = Path(__file__).resolve().parent / "static"

# Everything from this origin only: no inline script or style, no third party, no framing.
PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class PageHeaders:
    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", PAGE_CSP),
            (b"x-content-type-options", b"nosniff"),
            # Link tokens never leave in a Referer (they are out of the URL by then anyway).
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if settings.cookies_secure:
            self.headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        box = timing.start()
        status = 0
        path: str = scope["path"]
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                total_ms = (time.perf_counter() - started) * 1000
                extra = [
                    *self.headers,
                    (b"server-timing", f"api;dur={box[0] * 1000:.2f};desc=\"{int(box[1])} appel(s)\", "
                                       f"web;dur={total_ms - box[0] * 1000:.2f}".encode()),
                ]
                if not static:
                    # Pages carry the member's data: never stored by the browser or a proxy.
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if not static:
                access_log.info("request", extra={
                    "method": scope["method"], "path": path,  # never the query string
                    "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "api_ms": round(box[0] * 1000, 2), "api_calls": int(box[1]),
                })


def create_app(settings: WebSettings | None = None) -> ASGIApp:
    settings = settings or WebSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_telemetry(settings.service_name)
    api = Api(settings)
    web = Web(settings, api)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await api.start()
        freeze_startup_heap()
        log.info("web started", extra={"gateway": settings.gateway_url})
        try:
            yield
        finally:
            await api.stop()

    # RequestContextMiddleware makes the one server span; FastAPI's own would be a second per page.
    app = FastAPI(telemetry=FASTAPI_TELEMETRY_OFF, title="Espace — web", lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.web = web

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        # Ready = able to serve pages. The gateway being down shows as an error page, not as
        # web pulled out of rotation (the gateway itself forwards to web).
        ready = api.session is not None and not api.session.closed
        return JSONResponse({"status": "ok" if ready else "down"}, status_code=200 if ready else 503)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        had_session = request.cookies.get(web.session_cookie) is not None
        web.end_session(request)
        return web.redirect(request, "/connexion?etat=session-expiree" if had_session else "/connexion")

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, _: CsrfFailed) -> Response:
        return web.render(request, "error.html", status=403, title="Formulaire expiré",
                          detail="Ce formulaire a expiré ou ne vient pas de ce site. Rechargez la page et réessayez.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        if exc.status_code == 405:
            return web.render(request, "error.html", status=405, title="Action impossible",
                              detail="Cette page ne s'utilise pas ainsi.")
        return web.render(request, "error.html", status=exc.status_code, title="Erreur",
                          detail="La demande n'a pas pu être traitée.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("page error", extra={"error_type": type(exc).__name__})
        return web.render(request, "error.html", status=500, title="Erreur",
                          detail="Une erreur inattendue est survenue. Réessayez plus tard.")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(identity.router(web))
    app.include_router(space.router(web))
    app.include_router(services.router(web))
    wrapped = RequestContextMiddleware(PageHeaders(app, settings), service=settings.service_name)
    wrapped.web = web  # type: ignore[attr-defined]  # for tests and tooling
    return wrapped
