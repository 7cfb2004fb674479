"""Identity under load, through the gateway, on the real system (started here on bench ports).

Prints: sustained registrations/s and log-ins/s with p50/p99 latency (closed loop), and the
registration → e-mail-in-sink latency p50/p99 at 10 registrations/s (open loop).
Run: `make bench` (or `.venv/bin/python -m bench.identity_load --seconds 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp

from bench.argon2_limit import verify_rate
from bench.common import closed_loop, open_loop, p, sink_messages
from tests.integration.conftest import PASSWORD, Mailbox, Registry, activation_token
from tests.integration.system import System


def arrival_times(mailbox: Mailbox) -> dict[str, float]:
    """Recipient → when the sink stored the message (its file name is the UTC arrival time)."""
    return {str(headers["To"]).lower(): stamp for stamp, headers in sink_messages(mailbox.folder)}


async def run(seconds: float, concurrency: int) -> None:
    system = System.start("bench", extra_env={"GATEWAY_RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING"})
    try:
        registry = Registry(system, system.mail_dir.parent)
        mailbox = Mailbox(system.mail_dir)
        url = system.gateway_url
        print(f"system up ({system.mode}); {os.cpu_count()} cores; {seconds:.0f} s per closed-loop figure")
        # Below uvicorn's 5 s keep-alive, so a pooled connection is never one the server just closed.
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=3)
        async with aiohttp.ClientSession(url, connector=connector) as http:

            async def register(member) -> bool:
                async with http.post("/api/v1/identity/registrations", json=member.registration()) as r:
                    await r.read()
                    return r.status == 202

            # Warm-up: connections, caches, JIT-free Python but lazy imports all the same.
            for _ in range(5):
                await register(registry.take())

            registration_members = [registry.take() for _ in range(int(seconds * 80) + 200)]
            registrations = await closed_loop(
                lambda i: register(registration_members[i]), concurrency=concurrency, duration_s=seconds,
                max_calls=len(registration_members),
            )
            print(registrations.line("registrations (closed loop)") + "   (goal >= 40/s)")

            # Accounts to log in with: the first registered ones, activated from their e-mails.
            login_members = registration_members[:50]
            for member in login_members:
                token = activation_token(mailbox.wait_for(member.email, timeout=120)[0])
                async with http.post("/api/v1/identity/activations", json={"token": token}) as r:
                    assert r.status == 200, await r.text()

            async def log_in(i: int) -> bool:
                member = login_members[i % len(login_members)]
                body = {"identifier": member.membership_number, "password": PASSWORD}
                async with http.post("/api/v1/identity/sessions", json=body) as r:
                    await r.read()
                    return r.status == 200

            logins = await closed_loop(log_in, concurrency=concurrency, duration_s=seconds)
            print(logins.line("log-ins (closed loop)"))
            # The ceiling, measured now on the same machine (the system idle meanwhile).
            limit = await asyncio.get_running_loop().run_in_executor(None, verify_rate, min(seconds, 8.0))
            print(f"{'argon2id verify limit (argon2-cffi, ' + str(os.cpu_count()) + ' processes)':<46} {limit:8.1f}/s")
            print(f"{'log-ins / argon2id limit':<46} {logins.rate / limit:8.2f}   (goal >= 0.75)")

            # Registration → e-mail at a steady 10/s.
            await asyncio.sleep(2)
            paced = [registry.take() for _ in range(int(max(seconds, 10) * 10))]
            sent_at: dict[str, float] = {}

            async def paced_register(i: int) -> bool:
                sent_at[paced[i].email.lower()] = time.time()
                return await register(paced[i])

            answers = await open_loop(paced_register, rate=10, count=len(paced))
            print(answers.line("registrations at 10/s (open loop)"))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                arrived = arrival_times(mailbox)
                if all(email in arrived for email in sent_at):
                    break
                await asyncio.sleep(0.5)
            latencies = [(arrived[e] - t) * 1000 for e, t in sent_at.items() if e in arrived]
            missing = len(sent_at) - len(latencies)
            print(
                f"{'registration -> e-mail in sink at 10/s':<46} p50 {p(latencies, 50):7.1f} ms  p99 {p(latencies, 99):7.1f} ms"
                f"  n={len(latencies)} missing={missing}   (goal p99 <= 1000 ms)"
            )
    finally:
        system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
