"""Log-in throttling rules (pure): how long an identifier waits after failed attempts.

- The first `free_failures` consecutive failures cost nothing; from then on each failure makes
  the next attempt wait 2^(n - free_failures) seconds (1, 2, 4, ... s), at most `max_delay_s`.
- `window_cap` failures within one window (an hour) block the identifier until the window
  ends: never longer than that.
- A success resets the consecutive count and lifts the delay. It does not wipe the hour's count,
  so someone who watches a member log in cannot start over with fresh free attempts each time.
- Consecutive failures are forgotten after `memory_s` without a new one.

The caller counts an attempt as a failure *before* checking the password (parallel guesses are
then counted as they start, not after they finish) and calls `after_success` when it was right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 5
    max_delay_s: int = 900
    window_s: int = 3600
    window_cap: int = 20
    memory_s: int = 24 * 3600

    def delay_after(self, consecutive_failures: int) -> int:
        """Seconds to wait after the n-th consecutive failure."""
        if consecutive_failures < self.free_failures:
            return 0
        exponent = consecutive_failures - self.free_failures
        if exponent >= 32:  # 2**32 s is far past any cap; do not build huge integers
            return self.max_delay_s
        return min(2**exponent, self.max_delay_s)


@dataclass(frozen=True)
class ThrottleState:
    consecutive_failures: int = 0
    last_failure_at: datetime | None = None
    window_started_at: datetime | None = None
    window_failures: int = 0
    blocked_until: datetime | None = None


def retry_after(state: ThrottleState, now: datetime) -> int:
    """Whole seconds (at least 1) before the next attempt is heard; 0 when it may go now."""
    if state.blocked_until is None or state.blocked_until <= now:
        return 0
    return max(1, math.ceil((state.blocked_until - now).total_seconds()))


def record_failure(policy: ThrottlePolicy, state: ThrottleState, now: datetime) -> ThrottleState:
    remembered = state.last_failure_at is not None and now - state.last_failure_at < timedelta(seconds=policy.memory_s)
    consecutive = (state.consecutive_failures if remembered else 0) + 1
    window = timedelta(seconds=policy.window_s)
    if state.window_started_at is None or now >= state.window_started_at + window:
        window_started_at, window_failures = now, 1
    else:
        window_started_at, window_failures = state.window_started_at, state.window_failures + 1
    blocked_until = now + timedelta(seconds=policy.delay_after(consecutive))
    if window_failures >= policy.window_cap:
        blocked_until = max(blocked_until, window_started_at + window)
    return ThrottleState(
        consecutive_failures=consecutive,
        last_failure_at=now,
        window_started_at=window_started_at,
        window_failures=window_failures,
        blocked_until=blocked_until if blocked_until > now else None,
    )


def after_success(state: ThrottleState) -> ThrottleState:
    """The attempt counted up front was right: take it back and lift the delay."""
    return replace(
        state,
        consecutive_failures=0,
        last_failure_at=None,
        window_failures=max(0, state.window_failures - 1),
        blocked_until=None,
    )
