"""What the benchmarks share: percentiles, load loops, printing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def line(self, name: str) -> str:
        return f"{name:<46} {self.rate:8.1f}/s  p50 {p(self.latencies_ms, 50):7.1f} ms  p99 {p(self.latencies_ms, 99):7.1f} ms  n={len(self.latencies_ms)} errors={self.errors}"


def p(values: list[float], percentile: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]


async def closed_loop(call: Callable[[int], Awaitable[bool]], *, concurrency: int, duration_s: float, max_calls: int | None = None) -> Sample:
    """`concurrency` workers call back to back for `duration_s` (or until `max_calls`)."""
    sample = Sample()
    counter = iter(range(max_calls or 10**12))
    deadline = time.perf_counter() + duration_s
    start = time.perf_counter()

    async def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                i = next(counter)
            except StopIteration:
                return
            t0 = time.perf_counter()
            ok = await call(i)
            if ok:
                sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                sample.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.elapsed_s = time.perf_counter() - start
    return sample


def get_ok(session, url: str, headers: dict[str, str] | None = None) -> Callable[[int], Awaitable[bool]]:
    """A call for open_loop/closed_loop: GET `url` on an aiohttp session, read the body, True on 200."""

    async def call(_: int) -> bool:
        async with session.get(url, headers=headers) as response:
            await response.read()
            return response.status == 200

    return call


async def open_loop(call: Callable[[int], Awaitable[bool]], *, rate: float, count: int) -> Sample:
    """`count` calls started at a fixed `rate` whatever the answers' speed (no coordinated omission)."""
    sample = Sample()
    start = time.perf_counter()

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        ok = await call(i)
        if ok:
            sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
        else:
            sample.errors += 1

    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    sample.elapsed_s = time.perf_counter() - start
    return sample


# --- /proc: memory and CPU of a process, CPU of the machine ------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux ≥ 4.0, same user)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_queue_wait_ms(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for its CPU (another process had
    it): /proc/<pid>/schedstat, second field, in ns. 0 when the kernel does not keep it."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0


def involuntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def cpu_busy_seconds() -> float:
    """Time the CPUs spent busy (not idle or waiting on I/O), whoever used them: /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def service_pid(system, name: str) -> int:
    """The pid of one of the system's uvicorn processes (services.sh writes var/run/<name>.pid)."""
    return int((Path(system.env["ESPACE_VAR"]) / "run" / f"{name}.pid").read_text().split()[0])


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (a service's uvicorn process and, say, its render workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    return found


@contextlib.contextmanager
def paused(pids: list[int]):
    """SIGSTOP these processes for the block, SIGCONT after: a background backlog (documents'
    renderings) held out of a latency figure that is not about it. Whoever uses it says so."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def percentiles(name: str, values: list[float], unit: str = "ms", extra: str = "") -> str:
    """One line of a table: p50, p99, max and n of `values`."""
    top = max(values) if values else float("nan")
    return (f"{name:<46} p50 {p(values, 50):7.1f} {unit}  p99 {p(values, 99):7.1f} {unit}  max {top:7.1f} {unit}"
            f"  n={len(values)}{extra}")
class Sink:
    """The SMTP sink's folder, read as it fills: each message parsed once, with when the sink
    stored it (the file name starts with the UTC arrival time, deploy/local/smtpsink/main.go)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.messages: dict[str, tuple[float, Message]] = {}
        self._parser = BytesHeaderParser()

    def scan(self) -> list[tuple[float, Message]]:
        """Reads the messages that arrived since the last scan; returns them."""
        with os.scandir(self.folder) as entries:
            names = [e.name for e in entries if e.name.endswith(".eml") and e.name not in self.messages]
        new = []
        for name in names:
            stamp = datetime.strptime(name.split("Z-")[0], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC).timestamp()
            with open(self.folder / name, "rb") as handle:
                self.messages[name] = (stamp, self._parser.parse(handle, headersonly=True))
            new.append(self.messages[name])
        return new


def sink_messages(folder: Path) -> list[tuple[float, Message]]:
    """(arrival time, headers) of every message in the sink's folder."""
    return Sink(folder).scan()


async def consumers_caught_up(bootstrap: str, timeout: float = 600, exclude: frozenset[str] = frozenset()) -> float | None:
    """Waits until every consumer group (but `exclude`) has committed past what the broker holds
    now: a backlog (a members' import: documents renders a card per contract; the events a fault
    held up) worked off. Seconds it took, or None at the timeout. A broker that does not answer
    (restarting) is asked again. (Under a steady stream with batched consumers the lag summed
    over the groups is seldom exactly 0 at one instant, so that is not the criterion.)"""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    started = time.monotonic()
    target = None
    while time.monotonic() - started < timeout:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        ends_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(ends_reader.start(), 5)
            while time.monotonic() - started < timeout:
                committed = {}
                for group, _ in await asyncio.wait_for(admin.list_consumer_groups(), 5):
                    if group not in exclude:
                        offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(group), 5)
                        committed.update({(group, tp): o.offset for tp, o in offsets.items()})
                if target is None:
                    tps = list({tp for _, tp in committed})
                    target = await asyncio.wait_for(ends_reader.end_offsets(tps), 5) if tps else {}
                elif all(offset >= target.get(tp, 0) for (_, tp), offset in committed.items()):
                    return time.monotonic() - started
                await asyncio.sleep(0.3)
        except Exception:  # the broker away for a moment: new clients, same target
            await asyncio.sleep(0.5)
        finally:
            for close in (ends_reader.stop, admin.close):
                try:
                    await asyncio.wait_for(close(), 5)
                except Exception:
                    pass
    return None
