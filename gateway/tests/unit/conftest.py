"""The real gateway (uvicorn, the app from create_app) against fake services: small aiohttp.web
servers on ephemeral loopback ports, started in the test's event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
import uvicorn
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app import create_app
from gateway.config import GatewaySettings
from shared.platform.auth import AUDIENCE, ISSUER, JWKS_PATH


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """A signing key like identity's, and tokens made with it (or deliberately wrong ones)."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.kid = "test-key-1"
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def token(
        self, *, ttl: int = 300, key: Ed25519PrivateKey | None = None, kid: str | None = None, **overrides: Any
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "mid": str(uuid.uuid4()),
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return jwt.encode(claims, key or self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})


@dataclass
class Seen:
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes


@dataclass
class FakeService:
    """Answers whatever it is asked with a JSON echo, plus a few special paths (by last segment):
    stream (chunked, waits for `release`), slow (never answers in time), big, redirect, cookie,
    upload (counts a streamed body, signals its first chunk)."""

    name: str
    keys: Keys | None = None
    openapi: dict[str, Any] | None = None
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    upload_sizes: list[int] = field(default_factory=list)
    aborted_uploads: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        leaf = request.path.rsplit("/", 1)[-1]
        if request.path == "/openapi.json":
            if self.openapi is None:
                raise web.HTTPNotFound()
            return web.json_response(self.openapi)
        if request.path == "/readyz":
            return web.json_response({"status": "ok"})
        if leaf == "upload":
            return await self._upload(request)
        body = await request.read()
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path.split("?", 1)[0],
                query=request.query_string,
                headers={k.lower(): v for k, v in request.headers.items()},
                raw_headers=[(k.lower(), v) for k, v in request.headers.items()],
                body=body,
            )
        )
        if request.path == JWKS_PATH and self.keys is not None:
            return web.json_response({"keys": [self.keys.jwk]})
        if leaf == "stream":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b"first;")
            await asyncio.wait_for(self.release.wait(), 10)
            await response.write(b"second;")
            await response.write_eof()
            return response
        if leaf == "slow":
            await asyncio.sleep(30)
        if leaf == "big":
            return web.Response(body=b"x" * (3 * 1024 * 1024), content_type="application/octet-stream")
        if leaf == "redirect":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if leaf == "cookie":
            response = web.json_response({"ok": True})
            response.set_cookie("session", "secret-of-someone")
            return response
        if leaf == "headers":
            return web.json_response(
                {"ok": True},
                headers={
                    "X-Service-Header": "kept",
                    "X-Frame-Options": "SAMEORIGIN",
                    "Keep-Alive": "timeout=99",
                    "Content-Security-Policy": "default-src *",
                },
            )
        if leaf == "not-modified":
            return web.Response(status=304, headers={"ETag": '"v1"', "Content-Length": "1234"})
        if leaf == "status":
            return web.json_response({"error": "nope"}, status=int(request.query.get("code", "418")))
        return web.json_response(
            {
                "service": self.name,
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_length": len(body),
            },
            headers={"X-Service-Header": "kept"},
        )

    async def _upload(self, request: web.Request) -> web.Response:
        size = 0
        digest = hashlib.sha256()
        try:
            async for chunk in request.content.iter_any():
                if size == 0:
                    self.first_chunk.set()
                size += len(chunk)
                digest.update(chunk)
        except (aiohttp.ClientPayloadError, ConnectionError, asyncio.CancelledError):
            self.aborted_uploads += 1
            raise
        if request.content.exception() is not None or (request.content_length not in (None, size)):
            self.aborted_uploads += 1
        self.upload_sizes.append(size)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    return free_port()


@dataclass
class Services:
    keys: Keys
    identity: FakeService
    notifications: FakeService
    documents: FakeService
    claims: FakeService

    def settings(self, **overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "identity_url": self.identity.url,
            "notifications_url": self.notifications.url,
            "documents_url": self.documents.url,
            "claims_url": self.claims.url,
            "timeout_s": 2.0,
            "openapi_refresh_s": 60.0,
            "openapi_retry_s": 0.2,
            "cors_origins": ["https://espace.example"],
            # No web front end unless a test starts one (test_gateway_web.py).
            "web_url": None,
        }
        values.update(overrides)
        return GatewaySettings(**values)


IDENTITY_OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "identity", "version": "1"},
    "paths": {
        "/api/v1/identity/sessions": {
            "post": {
                "summary": "Log in",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SessionRequest"}}}
                },
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
                    },
                    "422": {
                        "description": "bad",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    },
                },
            },
            "delete": {"summary": "Log out everywhere", "responses": {"204": {"description": "done"}}},
        },
        "/api/v1/identity/me": {
            "get": {
                "summary": "My account",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
                    }
                },
            }
        },
        "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {
            "SessionRequest": {"type": "object", "properties": {"identifier": {"type": "string"}}},
            "Item": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Problem": {"type": "object", "properties": {"code": {"type": "string"}}},
        }
    },
    "tags": [{"name": "identity"}],
}

DOCUMENTS_OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "documents", "version": "1"},
    "paths": {
        "/api/v1/documents/letters": {
            "get": {
                "summary": "My letters",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}},
                    }
                },
            }
        },
        "/openapi-internal": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {
            # Same name as identity's, other content: must be renamed, and Page (which refers to
            # it) too, since Page differs once its ref is rewritten... here Page is new anyway.
            "Item": {"type": "object", "properties": {"letter_id": {"type": "integer"}}},
            "Page": {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}},
            },
            "Problem": {"type": "object", "properties": {"code": {"type": "string"}}},
        }
    },
}


@pytest.fixture(scope="session")
async def services() -> AsyncIterator[Services]:
    keys = Keys()
    identity = FakeService("identity", keys=keys, openapi=IDENTITY_OPENAPI)
    notifications = FakeService("notifications")  # serves no OpenAPI: counts as missing
    documents = FakeService("documents", openapi=DOCUMENTS_OPENAPI)
    claims = FakeService("claims")
    for service in (identity, notifications, documents, claims):
        await service.start()
    yield Services(keys, identity, notifications, documents, claims)
    for service in (identity, notifications, documents, claims):
        await service.stop()


@asynccontextmanager
async def serve(settings: GatewaySettings) -> AsyncIterator[str]:
    """The gateway app under uvicorn (httptools) on an ephemeral port; yields its base URL."""
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # as in the Dockerfile: the gateway decides whom to trust
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture(scope="session")
def start_gateway(services: Services) -> Callable[..., Any]:
    """`async with start_gateway(timeout_s=0.3) as url:` a gateway with these settings."""

    def start(**overrides: Any):
        return serve(services.settings(**overrides))

    return start


@pytest.fixture(scope="session")
async def gateway(start_gateway) -> AsyncIterator[str]:
    async with start_gateway() as url:
        yield url


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture(scope="session")
def keys(services: Services) -> Keys:
    return services.keys


@pytest.fixture(scope="session")
def bearer(keys: Keys) -> Callable[..., dict[str, str]]:
    def headers(**claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys.token(**claims)}"}

    return headers


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(base_url: str, request: bytes, *, body_parts: list[bytes] | None = None) -> RawResponse:
    """Bytes on a socket, for what HTTP clients refuse to send (dot segments, hop-by-hop headers,
    bodies that lie). The request should say Connection: close."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    for part in body_parts or []:
        try:
            writer.write(part)
            await writer.drain()
        except ConnectionError:
            break
    try:
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    if any(k.lower() == "transfer-encoding" and v.lower() == "chunked" for k, v in headers):
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2 :]
        body = decoded
    return RawResponse(status, headers, body)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def raw() -> Callable[..., Any]:
    return raw_request
