"""Rate limits: token buckets behind a small store interface.

`InMemoryBuckets` keeps them in this process: with several replicas each one counts on its own
(see the README for what that means and for the shared-store option). A shared store only has to
implement `RateLimitStore.take` atomically per key (e.g. the same arithmetic in a Redis Lua
script keyed the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.config import GatewaySettings, Rate


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0


class RateLimitStore(Protocol):
    async def take(self, key: str, rate: Rate) -> Decision:
        """Spend one token from `key`'s bucket if it has one."""
        ...


class InMemoryBuckets:
    """Token buckets in a dict, oldest-touched first. Bounded: past `max_keys`, buckets that have
    refilled (the same as absent) are dropped, then the least recently touched ones."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float, float]] = {}  # key -> (tokens, at, window)

    async def take(self, key: str, rate: Rate) -> Decision:
        now = self.clock()
        per_second = rate.limit / rate.window_s
        entry = self._buckets.pop(key, None)
        tokens = float(rate.limit) if entry is None else min(rate.limit, entry[0] + (now - entry[1]) * per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now, rate.window_s)
            decision = Decision(True)
        else:
            self._buckets[key] = (tokens, now, rate.window_s)
            decision = Decision(False, max(1, math.ceil((1.0 - tokens) / per_second)))
        if len(self._buckets) > self.max_keys:
            self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        full = [k for k, (_, at, window) in self._buckets.items() if now - at >= window]
        for key in full:
            del self._buckets[key]
        excess = len(self._buckets) - self.max_keys * 9 // 10
        if excess > 0:
            for key in list(self._buckets)[:excess]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """Per-route limits per client IP and per account identifier. Identifiers are normalised
    (NFKC, trimmed, case-folded) and keyed by HMAC so that neither logs nor the store hold them."""

    def __init__(self, settings: GatewaySettings, store: RateLimitStore | None = None) -> None:
        self.store = store or InMemoryBuckets(settings.rate_limit_max_keys)
        self.ip_rate = settings.ip_rate
        self.account_rate = settings.account_rate
        key = (
            settings.rate_limit_key.get_secret_value().encode() if settings.rate_limit_key else secrets.token_bytes(32)
        )
        self._hmac_key = key

    async def check_ip(self, route: str, ip: str) -> Decision:
        return await self.store.take(f"ip|{route}|{ip}", self.ip_rate)

    async def check_account(self, route: str, identifier: str) -> Decision:
        return await self.store.take(f"acct|{route}|{self.pseudonym(identifier)}", self.account_rate)

    def pseudonym(self, identifier: str) -> str:
        normal = unicodedata.normalize("NFKC", identifier).strip().casefold()
        # surrogatepass: JSON may carry a lone surrogate ("\ud800"), which has no UTF-8 form; it
        # still names an account to limit (the service then refuses the field with a 422).
        return hmac.new(self._hmac_key, normal.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def account_identifier(body: bytes, fields: tuple[str, ...]) -> str | None:
    """The first of `fields` present as a non-empty string in a JSON object body, else None
    (a malformed body is the service's to reject: it is forwarded and gets its 422)."""
    if not body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: nested too deep
        return None
    if not isinstance(document, dict):
        return None
    for name in fields:
        value = document.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None
