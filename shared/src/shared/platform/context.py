"""Per-request / per-message context: the correlation id that follows a request into events."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

CORRELATION_HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def accept_or_new_correlation_id(candidate: str | None) -> str:
    """Keep a caller's id when it is safe to log and pass on; otherwise make one."""
    if candidate and _VALID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def current_correlation_id() -> str | None:
    return correlation_id_var.get()
