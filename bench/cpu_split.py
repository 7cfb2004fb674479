"""Where the CPU goes during registrations: each process's CPU seconds per registration while a
closed loop registers members through the gateway (the system is started here, bench ports).

    .venv/bin/python -m bench.cpu_split [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aiohttp

from bench.common import closed_loop
from tests.integration.conftest import Registry
from tests.integration.system import System


def cpu_seconds_by_process() -> dict[str, float]:
    found: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if "postgres" in command:
            name = "postgres (all backends)"
        elif " -m uvicorn " in command:
            name = command.split(" -m uvicorn ")[1].split()[0]
        elif "kafka.Kafka" in command:
            name = "kafka broker (JVM)"
        elif "smtp_sink" in command:
            name = "smtp sink"
        else:
            continue
        found[name] = found.get(name, 0.0) + seconds
    return found


async def run(seconds: float) -> None:
    system = System.start("cpusplit", extra_env={"GATEWAY_RATE_LIMITS_ENABLED": "false"})
    try:
        registry = Registry(system, system.mail_dir.parent)
        members = [registry.take() for _ in range(int(seconds * 50))]
        connector = aiohttp.TCPConnector(keepalive_timeout=3)
        async with aiohttp.ClientSession(system.gateway_url, connector=connector) as http:

            async def register(i: int) -> bool:
                async with http.post("/api/v1/identity/registrations", json=members[i].registration()) as r:
                    await r.read()
                    return r.status == 202

            before = cpu_seconds_by_process()
            sample = await closed_loop(register, concurrency=16, duration_s=seconds, max_calls=len(members))
            await asyncio.sleep(3)  # let the consumers and the e-mails catch up
            after = cpu_seconds_by_process()
        print(sample.line("registrations (closed loop)"))
        count = len(sample.latencies_ms)
        for name in sorted(after, key=lambda n: before.get(n, 0) - after[n]):
            spent = after[name] - before.get(name, 0)
            print(f"  {name:<28} {spent:6.2f} s CPU  {spent / count * 1000:6.1f} ms per registration")
    finally:
        system.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    asyncio.run(run(parser.parse_args().seconds))
