"""Liveness (the process answers) and readiness (what it cannot serve without answers).

Kafka is reported but does not make a service unready: the outbox lets a service take requests
while the broker is away, and its events go out when it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[bool]]


def health_router(required: dict[str, Check], informational: dict[str, Check] | None = None) -> APIRouter:
    checks = {**required, **(informational or {})}
    router = APIRouter(tags=["health"], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(_bounded(checks[n]) for n in names))
        status = {name: ("ok" if ok else "down") for name, ok in zip(names, results, strict=True)}
        ready = all(ok for name, ok in zip(names, results, strict=True) if name in required)
        return JSONResponse({"status": "ok" if ready else "down", "checks": status}, status_code=200 if ready else 503)

    return router


async def _bounded(check: Check, timeout_s: float = 2.0) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout_s)
    except Exception:
        return False
