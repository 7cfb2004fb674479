"""Time a page spent waiting for the API, per request (a context variable), so the answer can say
in Server-Timing what web itself added: the bench reads it."""

from __future__ import annotations

from contextvars import ContextVar

_api_time: ContextVar[list[float] | None] = ContextVar("web_api_time", default=None)


def start() -> list[float]:
    box = [0.0, 0.0]  # seconds waiting for the API, number of calls
    _api_time.set(box)
    return box


def add_api_time(seconds: float) -> None:
    box = _api_time.get()
    if box is not None:
        box[0] += seconds
        box[1] += 1
