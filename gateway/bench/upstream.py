"""A stand-in service for the latency bench: a small JSON answer, and identity's JWKS (the public
key comes from BENCH_JWK). Plain ASGI on uvicorn, so the service side costs as little as it can."""

import json
import os

JWKS = json.dumps({"keys": [json.loads(os.environ.get("BENCH_JWK", "{}"))]}).encode()
SMALL = json.dumps(
    {"guarantees": [{"code": "OPT", "label": "Optique", "rate_percent": 100}], "next_cursor": None}
).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    body = JWKS if scope["path"].endswith("jwks.json") else SMALL
    if scope["path"] == "/openapi.json":
        body = b'{"openapi": "3.1.0", "paths": {}}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
