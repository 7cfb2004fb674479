"""A stand-in service for the gateway bench (plain ASGI on uvicorn, so the service side costs as
little as it can):

- any GET: a small JSON answer (identity's JWKS for the JWKS path, the public key coming from
  BENCH_JWK; an empty OpenAPI document for /openapi.json);
- any POST: an upload sink that reads the body as it streams, keeps none of it, and answers
  its size (and whether it came with a Content-Length).
"""

from __future__ import annotations

import json
import os

JWKS = json.dumps({"keys": [json.loads(os.environ.get("BENCH_JWK", "{}"))]}).encode()
OPENAPI = b'{"openapi": "3.1.0", "info": {"title": "stand-in", "version": "0"}, "paths": {}}'
SMALL = json.dumps(
    {"guarantees": [{"code": "OPT", "label": "Optique", "rate_percent": 100}], "next_cursor": None}
).encode()


async def _answer(send, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "POST":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        declared = any(name == b"content-length" for name, _ in scope["headers"])
        await _answer(send, json.dumps({"size": size, "declared_length": declared}).encode())
    elif path.endswith("jwks.json"):
        await _answer(send, JWKS)
    elif path == "/openapi.json":
        await _answer(send, OPENAPI)
    else:
        await _answer(send, SMALL)
