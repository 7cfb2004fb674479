"""Time a page spent waiting for the API, per request (a context variable), so the answer can say
in Server-Timing what web itself added: the bench reads it.

Calls made together (asyncio.gather) overlap: the wait is the wall time during which at least one
call was in flight, not the sum of the calls' durations (which would exceed the page's own time
and leave web a negative share)."""

from __future__ import annotations

import time
from contextvars import ContextVar

_api_time: ContextVar[list[float] | None] = ContextVar("web_api_time", default=None)


def start() -> list[float]:
    # seconds waiting for the API, number of calls, calls in flight, when the first of them began
    box = [0.0, 0.0, 0.0, 0.0]
    _api_time.set(box)
    return box


def call_started() -> None:
    box = _api_time.get()
    if box is not None:
        if box[2] == 0:
            box[3] = time.perf_counter()
        box[2] += 1


def call_ended() -> None:
    box = _api_time.get()
    if box is not None and box[2] > 0:
        box[1] += 1
        box[2] -= 1
        if box[2] == 0:
            box[0] += time.perf_counter() - box[3]
