"""What the gateway costs, against a stand-in service (bench/gateway_upstream.py), on 127.0.0.1.

    .venv/bin/python -m bench.gateway_latency [--rate 200] [--count 3000] [--seconds 10] [--upload-mib 200]

The gateway runs the real path (gateway.main:app under uvicorn with httptools and uvloop, as
deployed): token verified against the stand-in's JWKS, correlation id, server span (made, not
exported), security headers, one access-log line per request (to a file).


1. Latency: the same small authenticated GET straight to the stand-in and through the gateway,
   at a steady --rate (open loop: requests leave on schedule whatever the answers' speed), in
   alternating rounds so background noise falls on both; p50/p99 and what the hop adds. Nothing
   is pinned here: pinned to a CPU that other processes also use, the gateway waits for it where
   the scheduler would have moved it (the tail doubled when the machine was busy). How much the
   rest of the machine was doing meanwhile is printed with the figures.
2. Throughput of ONE gateway process on ONE core: on a machine with two CPUs or more, the
   gateway is pinned to CPU 1 (`taskset -a -p -c 1`) and the stand-in, this process and the load
   generator to CPU 0. wrk (one thread, --connections) for --seconds when it is installed; else a
   closed aiohttp loop (a Python client on one core may then be the limit: the gateway's own CPU
   use is printed to tell).
3. Upload: --upload-mib MiB streamed through the gateway (Content-Length declared, the upload
   route's body cap raised for the bench) to the stand-in's sink: MB/s, and the gateway's
   resident memory before and at its peak during the upload (/proc/<pid>/status).
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
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import (
    Sample,
    closed_loop,
    cpu_busy_seconds,
    cpu_seconds,
    get_ok,
    involuntary_switches,
    open_loop,
    p,
    proc_status,
    reset_peak_rss,
    run_queue_wait_ms,
)
from shared.platform.auth import AUDIENCE, ISSUER

ROOT = Path(__file__).resolve().parents[1]
SMALL_PATH = "/api/v1/claims/guarantees"
UPLOAD_PATH = "/api/v1/documents/invoices/upload"
MIB = 1024 * 1024

GOALS = {
    "added_p50_ms": 1.0,
    "added_p99_ms": 3.0,
    "requests_per_core": 1500.0,
    "upload_mb_s": 100.0,
    "upload_growth_mib": 32.0,
}


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_key() -> tuple[dict, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
           "kid": "bench", "alg": "EdDSA", "use": "sig"}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "mid": str(uuid.uuid4()),
              "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    return jwk, jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "bench"})


class Pinning:
    """For the throughput part: CPU 1 for the gateway (`taskset -a -p -c 1 <pid>`: all its
    threads), CPU 0 for the rest (the stand-in, this process, wrk), when there are two CPUs."""

    def __init__(self) -> None:
        self.all_cpus = sorted(os.sched_getaffinity(0))
        self.enabled = len(self.all_cpus) >= 2 and shutil.which("taskset") is not None
        self.load_cpu, self.gateway_cpu = (self.all_cpus + self.all_cpus)[:2]
        self.pinned = False

    @staticmethod
    def _taskset(cpus: str, pid: int) -> None:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, capture_output=True)

    def pin(self, *, gateway: int, others: list[int]) -> None:
        if not self.enabled:
            return
        self._taskset(str(self.gateway_cpu), gateway)
        for pid in others:
            self._taskset(str(self.load_cpu), pid)
        os.sched_setaffinity(0, {self.load_cpu})
        self.pinned = True

    def unpin(self, pids: list[int]) -> None:
        if not self.pinned:
            return
        every = ",".join(map(str, self.all_cpus))
        for pid in pids:
            self._taskset(every, pid)
        os.sched_setaffinity(0, set(self.all_cpus))
        self.pinned = False

    def command(self, args: list[str]) -> list[str]:
        """A load generator started while pinned runs on the load CPU."""
        return ["taskset", "-c", str(self.load_cpu), *args] if self.pinned else args

    def describe(self) -> str:
        if not self.enabled:
            return "fewer than 2 CPUs or no taskset: the throughput figure is the whole machine's"
        return (f"gateway pinned to CPU {self.gateway_cpu}, stand-in service, load generator and wrk to CPU"
                f" {self.load_cpu}")


def uvicorn(app: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--no-proxy-headers", "--no-server-header", "--http", "httptools", "--loop", "uvloop", *extra]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url}: not ready after {seconds:g} s")


# --- 1. latency -------------------------------------------------------------------------------


async def paced(url: str, headers: dict[str, str], rate: float, rounds: int, per_round: int) -> dict[str, Sample]:
    """Alternating rounds of `per_round` requests at `rate`, direct then through the gateway."""
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:
        samples = {name: Sample() for name in url}
        for name, target in url.items():  # warm-up: connections, JWKS, token cache
            warm = get_ok(session, target, headers)
            for _ in range(300):
                await warm(0)
        for _ in range(rounds):
            for name, target in url.items():
                sample = await open_loop(get_ok(session, target, headers), rate=rate, count=per_round)
                samples[name].latencies_ms += sample.latencies_ms
                samples[name].errors += sample.errors
                samples[name].elapsed_s += sample.elapsed_s
        return samples


# --- 2. throughput ----------------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], connections: int, seconds: float, pinning: Pinning) -> dict[str, str]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(pinning.command([*args, url]), capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{pct}"] = match[1] if match else "?"
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    result["non_2xx"] = int(non2xx[1]) if non2xx else 0
    result["socket_errors"] = errors[0] if errors else ""
    return result


async def aiohttp_loop(url: str, headers: dict[str, str], connections: int, seconds: float) -> Sample:
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await closed_loop(get_ok(session, url, headers), concurrency=connections, duration_s=seconds)


# --- 3. upload --------------------------------------------------------------------------------


async def upload(url: str, headers: dict[str, str], total: int, watch_pid: int | None) -> tuple[float, dict, int]:
    """(seconds, the sink's answer, highest VmRSS sampled in `watch_pid` meanwhile)."""
    chunk = b"%PDF" + b"\0" * (256 * 1024 - 4)

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            piece = chunk if total - sent >= len(chunk) else chunk[: total - sent]
            sent += len(piece)
            yield piece

    highest = 0
    done = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal highest
        while not done.is_set():
            highest = max(highest, proc_status(watch_pid)["VmRSS"])
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample_rss()) if watch_pid else None
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        async with session.post(
            url,
            data=body(),
            headers={**headers, "Content-Type": "application/pdf", "Content-Length": str(total)},
        ) as response:
            answer = await response.json()
            assert response.status == 200, (response.status, answer)
        elapsed = time.perf_counter() - started
    done.set()
    if sampler:
        await sampler
    return elapsed, answer, highest


# --- the bench --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def run(args: argparse.Namespace) -> None:
    pinning = Pinning()
    jwk, token = make_key()
    auth = {"Authorization": f"Bearer {token}"}
    logs = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    up_port, gw_port = free_port(), free_port()
    service_url = f"http://127.0.0.1:{up_port}"
    gateway_url = f"http://127.0.0.1:{gw_port}"
    upload_bytes = args.upload_mib * MIB

    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("GATEWAY_") and k not in ("ESPACE_TRACE_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    upstream = subprocess.Popen(
        uvicorn("bench.gateway_upstream:app", up_port, "--log-level", "warning"),
        cwd=ROOT, env={**base_env, "BENCH_JWK": json.dumps(jwk)},
        stdout=subprocess.DEVNULL, stderr=open(logs / "upstream.log", "wb"),
    )
    gateway_env = {
        **base_env,
        **{f"GATEWAY_{name}_URL": service_url for name in ("IDENTITY", "NOTIFICATIONS", "DOCUMENTS", "CLAIMS")},
        # The bench's upload goes over the 20 MiB default cap of the upload routes.
        "GATEWAY_UPLOAD_MAX_BODY_BYTES": str(upload_bytes + MIB),
        "GATEWAY_LOG_LEVEL": "INFO",  # the access log is part of the path
    }
    gateway = subprocess.Popen(
        uvicorn("gateway.main:app", gw_port),
        cwd=ROOT, env=gateway_env, stdout=subprocess.DEVNULL, stderr=open(logs / "gateway.log", "wb"),
    )
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    results: dict[str, float] = {}
    try:
        wait_ready(f"{service_url}/readyz", upstream)
        wait_ready(f"{gateway_url}/readyz", gateway)
        print(f"gateway bench: {os.cpu_count()} CPUs; the gateway is uvicorn + gateway.main:app (httptools, uvloop),"
              f" the service a stand-in (bench/gateway_upstream.py)")

        # 1. Latency at a steady rate.
        rounds = 6
        per_round = max(1, args.count // rounds)
        urls = {"direct": service_url + SMALL_PATH, "gateway": gateway_url + SMALL_PATH}
        waited, preempted = run_queue_wait_ms(gateway.pid), involuntary_switches(gateway.pid)
        ours = (os.getpid(), gateway.pid, upstream.pid)
        busy, own, wall = cpu_busy_seconds(), sum(map(cpu_seconds, ours)), time.perf_counter()
        samples = runner.run(paced(urls, auth, args.rate, rounds, per_round))
        waited, preempted = run_queue_wait_ms(gateway.pid) - waited, involuntary_switches(gateway.pid) - preempted
        others = (cpu_busy_seconds() - busy - (sum(map(cpu_seconds, ours)) - own)) / (time.perf_counter() - wall)
        print(f"\n1. latency, small authenticated GET at {args.rate:g} req/s (open loop, {rounds} alternating rounds,"
              f" {per_round * rounds} requests each)")
        for name, sample in samples.items():
            lat = sample.latencies_ms
            print(f"   {name:<8} p50 {p(lat, 50):6.3f} ms   p99 {p(lat, 99):6.3f} ms   max {max(lat):7.3f} ms"
                  f"   {sample.rate:6.1f} req/s   errors {sample.errors}")
        print(f"   noise: other processes used {max(others, 0):.2f} of the {len(pinning.all_cpus)} CPUs meanwhile;"
              f" the gateway was preempted {preempted} times and waited {waited:.0f} ms in all for a CPU")
        direct, through = samples["direct"].latencies_ms, samples["gateway"].latencies_ms
        results["added_p50_ms"] = p(through, 50) - p(direct, 50)
        results["added_p99_ms"] = p(through, 99) - p(direct, 99)
        print(f"   added by the gateway: p50 {results['added_p50_ms']:+.3f} ms"
              f" (goal ≤ {GOALS['added_p50_ms']:g}: {verdict(results['added_p50_ms'] <= GOALS['added_p50_ms'])}),"
              f" p99 {results['added_p99_ms']:+.3f} ms"
              f" (goal ≤ {GOALS['added_p99_ms']:g}: {verdict(results['added_p99_ms'] <= GOALS['added_p99_ms'])})")

        # 2. Maximum throughput of one gateway process on one core.
        tool = "wrk" if shutil.which("wrk") else "aiohttp closed loop"
        print(f"\n2. throughput, small authenticated GET, {args.connections} connections, {args.seconds:g} s, {tool};"
              f" {pinning.describe()}")
        pinning.pin(gateway=gateway.pid, others=[upstream.pid])
        cpu_before, wall_before = cpu_seconds(gateway.pid), time.perf_counter()
        if tool == "wrk":
            result = wrk(urls["gateway"], auth, args.connections, args.seconds, pinning)
            rate = result["requests_per_s"]
            detail = f"p50 {result['p50']}, p99 {result['p99']}, non-2xx {result['non_2xx']} {result['socket_errors']}"
        else:
            sample = runner.run(aiohttp_loop(urls["gateway"], auth, args.connections, args.seconds))
            rate = sample.rate
            detail = f"p50 {p(sample.latencies_ms, 50):.2f} ms, p99 {p(sample.latencies_ms, 99):.2f} ms, errors {sample.errors}"
        busy = (cpu_seconds(gateway.pid) - cpu_before) / (time.perf_counter() - wall_before)
        pinning.unpin([gateway.pid, upstream.pid])
        results["requests_per_core"] = rate
        print(f"   gateway  {rate:8.0f} req/s   {detail}")
        print(f"   gateway process CPU: {busy:.0%} of one core ({busy * 1000 / rate if rate else float('nan'):.3f} ms of CPU"
              f" per request); goal ≥ {GOALS['requests_per_core']:,.0f} req/s per core:"
              f" {verdict(rate >= GOALS['requests_per_core'])}"
              + ("" if busy > 0.85 else "   (the gateway was not saturated: the load generator was the limit)"))

        # 3. A large upload streamed through.
        print(f"\n3. upload, {args.upload_mib} MiB ({upload_bytes:,} bytes) with Content-Length, to a stand-in sink")
        elapsed, answer, _ = runner.run(upload(service_url + UPLOAD_PATH, auth, upload_bytes, None))
        assert answer["size"] == upload_bytes, answer
        print(f"   direct   {upload_bytes / elapsed / 1e6:7.1f} MB/s")
        reset = reset_peak_rss(gateway.pid)
        before = proc_status(gateway.pid)["VmRSS"]
        elapsed, answer, sampled = runner.run(upload(gateway_url + UPLOAD_PATH, auth, upload_bytes, gateway.pid))
        after = proc_status(gateway.pid)
        assert answer["size"] == upload_bytes and answer["declared_length"], answer
        peak = max(sampled, after["VmHWM"] if reset else 0)
        results["upload_mb_s"] = upload_bytes / elapsed / 1e6
        results["upload_growth_mib"] = (peak - before) / MIB
        print(f"   gateway  {results['upload_mb_s']:7.1f} MB/s (goal ≥ {GOALS['upload_mb_s']:g}:"
              f" {verdict(results['upload_mb_s'] >= GOALS['upload_mb_s'])})")
        print(f"   gateway RSS: {before / MIB:.1f} MiB before, {peak / MIB:.1f} MiB at the peak"
              f" ({'VmHWM reset before the upload, and ' if reset else ''}VmRSS sampled every 5 ms),"
              f" {after['VmRSS'] / MIB:.1f} MiB after: growth {results['upload_growth_mib']:+.1f} MiB"
              f" (goal ≤ {GOALS['upload_growth_mib']:g}:"
              f" {verdict(results['upload_growth_mib'] <= GOALS['upload_growth_mib'])})")

        ceilings = ("added_p50_ms", "added_p99_ms", "upload_growth_mib")
        missed = [name for name, goal in GOALS.items()
                  if (results[name] > goal if name in ceilings else results[name] < goal)]
        print(f"\ngateway goals: {'all met' if not missed else 'missed: ' + ', '.join(missed)}   (logs: {logs})")
    finally:
        runner.close()
        for process in (gateway, upstream):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200, help="requests/s of the latency part")
    parser.add_argument("--count", type=int, default=4500, help="requests per target in the latency part")
    parser.add_argument("--connections", type=int, default=64, help="connections of the throughput part")
    parser.add_argument("--seconds", type=float, default=10, help="duration of the throughput part")
    parser.add_argument("--upload-mib", type=int, default=200, help="size of the streamed upload")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
