"""Where the CPU goes during registrations: each process's CPU seconds per registration while a
closed loop registers members through the gateway (the system is started here, bench ports).
Only this system's processes count (found from its pid files and their children), so other
work on the machine does not show up in the split.

    .venv/bin/python -m bench.cpu_split [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import aiohttp

from bench.common import closed_loop, consumers_caught_up
from tests.integration.conftest import Registry
from tests.integration.system import System

# Goals of the CPU split per registration (issue 7), in ms.
GOALS = {"documents.main:app": 1.0, "claims.main:app": 1.0, "kafka broker (JVM)": 5.0, "notifications.main:app": 5.0}


def _roots(system: System) -> dict[int, str]:
    var = Path(system.env["ESPACE_VAR"])
    roots: dict[int, str] = {}
    for pidfile in (var / "run").glob("*.pid"):
        name = pidfile.stem
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        roots[pid] = {"kafka": "kafka broker (JVM)", "smtp": "smtp sink"}.get(name, f"{name}.main:app")
    postmaster = var / "pg" / "data" / "postmaster.pid"
    try:
        roots[int(postmaster.read_text().split()[0])] = "postgres (all backends)"
    except (OSError, ValueError, IndexError):
        pass
    return roots


def cpu_seconds_by_process(system: System) -> dict[str, float]:
    """CPU seconds (user + system) of the system's processes and their children, by name."""
    stats: dict[int, tuple[int, float]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    roots = _roots(system)
    found: dict[str, float] = {}
    for pid, (ppid, seconds) in stats.items():
        owner, hops = pid, 0
        while owner not in roots and owner in stats and hops < 10:
            owner, hops = stats[owner][0], hops + 1
        if owner in roots:
            found[roots[owner]] = found.get(roots[owner], 0.0) + seconds
    return found


async def run(seconds: float) -> None:
    # The registry's import leaves a card per contract for documents' background renderer (~0.25 s
    # of CPU each, niced): not a registration's work, yet it would fall in the window and take CPU
    # from it. This documents replica records and serves only (it would render a card on demand).
    system = System.start("cpusplit", extra_env={"GATEWAY_RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING",
                                                 "DOCUMENTS_RENDER_IN_BACKGROUND": "false"})
    try:
        registry = Registry(system, system.mail_dir.parent)
        members = [registry.take() for _ in range(int(seconds * 60))]
        connector = aiohttp.TCPConnector(keepalive_timeout=3)
        async with aiohttp.ClientSession(system.gateway_url, connector=connector) as http:

            async def register(i: int) -> bool:
                async with http.post("/api/v1/identity/registrations", json=members[i].registration()) as r:
                    await r.read()
                    return r.status == 202

            for i in range(5):  # warm-up, out of the figures
                await register(len(members) - 1 - i)
            # The registry's import is a backlog of its own (a card per contract in documents).
            waited = await consumers_caught_up(system.kafka_bootstrap)
            print(f"  members' import worked off in {waited:.0f} s" if waited is not None
                  else "  members' import NOT worked off within 600 s: the figures below include it")
            await asyncio.sleep(2)
            before = cpu_seconds_by_process(system)
            sample = await closed_loop(register, concurrency=16, duration_s=seconds, max_calls=len(members) - 5)
            await asyncio.sleep(3)  # let the consumers and the e-mails catch up
            after = cpu_seconds_by_process(system)
        print(sample.line("registrations (closed loop)"))
        count = len(sample.latencies_ms)
        for name in sorted(after, key=lambda n: before.get(n, 0) - after[n]):
            spent = after[name] - before.get(name, 0)
            goal = f"   (goal <= {GOALS[name]:.0f} ms)" if name in GOALS else ""
            print(f"  {name:<28} {spent:6.2f} s CPU  {spent / count * 1000:6.1f} ms per registration{goal}")
    finally:
        system.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    asyncio.run(run(parser.parse_args().seconds))
