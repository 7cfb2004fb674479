"""The log-in ceiling: how many argon2id verifications per second argon2-cffi does on this
machine with identity's own parameters, one process per core (what identity's hashing threads
can do at best, since argon2-cffi releases the GIL)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor


def _verify_for(seconds: float) -> int:
    from identity.adapters.password_hasher import ASVS_HASHER

    stored = ASVS_HASHER.hash("Espace-2026!ok")
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ASVS_HASHER.verify(stored, "Espace-2026!ok")
        done += 1
    return done


def verify_rate(seconds: float = 5.0, processes: int | None = None) -> float:
    processes = processes or os.cpu_count() or 1
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_verify_for, [0.2] * processes))  # start-up and imports out of the figure
        start = time.perf_counter()
        total = sum(pool.map(_verify_for, [seconds] * processes))
        return total / (time.perf_counter() - start)


if __name__ == "__main__":
    print(f"argon2id verify (identity's parameters), {os.cpu_count()} processes: {verify_rate():.1f}/s")
