"""What the gateway hop costs: the same small GET sent straight to a stand-in service and through
the gateway (token verified, correlation id, trace context, security headers, access log: the
real path), on 127.0.0.1 only.

    .venv/bin/python gateway/bench/latency.py [--requests 3000] [--concurrency 64] [--seconds 10]

1. Latency: one keep-alive connection, requests one after another (aiohttp client), p50/p99.
2. Throughput: `wrk` with --concurrency connections when it is installed, else an aiohttp loop.
Each part runs direct, then through the gateway. Processes: the stand-in service (uvicorn,
plain ASGI), the gateway (uvicorn gateway.main:app), the load generator: on a 2-core machine
they share the cores, so the throughput figure is the whole machine's, not the gateway's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.platform.auth import AUDIENCE, ISSUER

HERE = Path(__file__).resolve().parent
PATH = "/api/v1/claims/guarantees"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_key() -> tuple[dict, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        "kid": "bench",
        "alg": "EdDSA",
    }
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "mid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 3600,
        "jti": "bench",
    }
    return jwk, jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "bench"})


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: process exited")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url}: not ready")


async def sequential(url: str, headers: dict[str, str], n: int) -> list[float]:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(200):  # warm-up: connection, JWKS, caches
            async with session.get(url, headers=headers) as response:
                await response.read()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            times.append((time.perf_counter() - started) * 1000)
        return times


async def loop_throughput(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    count = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def wrk(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> dict[str, str]:
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": re.search(r"Requests/sec:\s+([\d.]+)", out)[1]}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}"] = match[1] if match else "?"
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = non2xx[1] if non2xx else "0"
    return result


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    jwk, token = make_key()
    up_port, gw_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    upstream_env = {**os.environ, "BENCH_JWK": json.dumps(jwk)}
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "upstream:app",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(up_port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ],
        env=upstream_env,
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "upstream.log", "wb"),
    )
    service_url = f"http://127.0.0.1:{up_port}"
    gateway_env = {
        **os.environ,
        **{f"GATEWAY_{name}_URL": service_url for name in ("IDENTITY", "NOTIFICATIONS", "DOCUMENTS", "CLAIMS")},
    }
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(gw_port),
            "--no-access-log",
            "--no-proxy-headers",
            "--no-server-header",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ],
        env=gateway_env,
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "gateway.log", "wb"),
    )
    try:
        wait_ready(f"{service_url}/readyz", upstream)
        wait_ready(f"http://127.0.0.1:{gw_port}/readyz", gateway)
        direct_url = f"{service_url}{PATH}"
        gateway_url = f"http://127.0.0.1:{gw_port}{PATH}"
        auth = {"Authorization": f"Bearer {token}"}

        print(f"latency, {args.requests} sequential requests on one keep-alive connection (ms)")
        results = {}
        for name, url in (("direct", direct_url), ("gateway", gateway_url)):
            times = asyncio.run(sequential(url, auth, args.requests))
            results[name] = times
            print(
                f"  {name:8s} p50 {statistics.median(times):.3f}  p90 {pct(times, 90):.3f}  p99 {pct(times, 99):.3f}  max {max(times):.3f}"
            )
        added50 = statistics.median(results["gateway"]) - statistics.median(results["direct"])
        added99 = pct(results["gateway"], 99) - pct(results["direct"], 99)
        print(f"  added by the gateway: p50 {added50:.3f} ms, p99 {added99:.3f} ms")

        print(f"throughput, {args.concurrency} connections, {args.seconds:g} s")
        for name, url in (("direct", direct_url), ("gateway", gateway_url)):
            if shutil.which("wrk"):
                result = wrk(url, auth, args.concurrency, args.seconds)
                print(
                    f"  {name:8s} wrk: {result['requests_per_s']} req/s, p50 {result['p50']}, p99 {result['p99']}, non-2xx {result['non_2xx']}"
                )
            else:
                rate = asyncio.run(loop_throughput(url, auth, args.concurrency, args.seconds))
                print(f"  {name:8s} aiohttp loop: {rate:.0f} req/s")
    finally:
        for process in (gateway, upstream):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        print(f"logs: {logs}")


if __name__ == "__main__":
    main()
