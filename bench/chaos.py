"""`make chaos`: the real local system, supervised as `make run` supervises it, under a steady
stream of registrations through the gateway while its parts are killed, stopped and cut off.

Faults, one after the other: kill -9 of the broker; kill -9 of each consumer service; kill -9 of
identity while its outbox relay has rows to publish; PostgreSQL stopped with `-m immediate`;
the SMTP sink down for 30 s; a poison message on every topic; e-mails parked on the dead-letter
topic by a fault of our making (a CHECK constraint notifications' table refuses), the fault
fixed, then `make replay-dlq`, twice. Every restart is the supervisor's (deploy/local/run.sh);
the suite only kills.

What counts: a registration the gateway answered 202 must give exactly one activation e-mail in
the SMTP sink. The ground truth is identity's database: every account created for the stream's
members (202 or not: an answer lost in a kill may still have committed) expects one e-mail.
  lost        an account without its e-mail (or a 202 without an account) at the end
  duplicated  a member with two different activation e-mails (two Message-IDs)
  resent      the same Message-ID delivered twice: the documented at-most-one resend after a
              crash between the SMTP hand-over and the commit (notifications' README); shown,
              not failed on
It prints one table, one row per fault, and exits 1 on any loss or duplicate, on a component
the supervisor did not bring back, or if the supervisor did not stop cleanly.

Ports: the test ports shifted by ESPACE_CHAOS_PORT_OFFSET (2000); state in var/chaos (wiped).
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import consumers_caught_up
from shared.contracts import topics
from shared.platform.dlq import REPLAY_GROUP

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "deploy" / "local"
OFFSET = int(os.environ.get("ESPACE_CHAOS_PORT_OFFSET", "2000"))
PORTS = {
    name: str(port + OFFSET)
    for name, port in {
        "GATEWAY_PORT": 28000, "IDENTITY_PORT": 28001, "NOTIFICATIONS_PORT": 28002, "DOCUMENTS_PORT": 28003,
        "CLAIMS_PORT": 28004, "KAFKA_PORT": 29092, "KAFKA_CONTROLLER_PORT": 29093, "PG_PORT": 57432, "SMTP_PORT": 12025,
    }.items()
}
VAR = ROOT / "var" / "chaos"
RATE = float(os.environ.get("ESPACE_CHAOS_RATE", "5"))  # registrations per second
PASSWORD = "Espace-2026!ok"
ENV = {
    **os.environ,
    **PORTS,
    "ESPACE_VAR": str(VAR),
    "PYTHON": sys.executable,
    "KAFKA_BOOTSTRAP": f"127.0.0.1:{PORTS['KAFKA_PORT']}",
    # Every registration comes from 127.0.0.1: the per-IP limit would refuse the stream.
    "GATEWAY_RATE_LIMIT_PER_IP": "100000/60",
    "LOG_LEVEL": "WARNING",
    # PostgreSQL is killed here: commits must be on disk before they are answered, as in
    # production (the dev default answers first, and lost a registration already answered 202).
    "PG_SYNCHRONOUS_COMMIT": "on",
}
BOOTSTRAP = ENV["KAFKA_BOOTSTRAP"]
DB = f"postgresql://espace:espace@127.0.0.1:{PORTS['PG_PORT']}"
PARK_CONSTRAINT = "chaos_parks_these"


def note(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    name: str
    start: float
    back: float | None = None  # the fault is over (the component is back) at
    parked: int = 0
    lag_zero: float | None = None


@dataclass
class Request:
    member: str
    email: str
    at: float
    status: int | str = "pending"


@dataclass
class Run:
    phases: list[Phase] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    members: list[tuple[str, date]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)
    stream_on: bool = True


# -- the supervised system ------------------------------------------------------------------------
class Supervisor:
    """deploy/local/run.sh, as `make run` starts it, on the chaos ports."""

    def __init__(self) -> None:
        self.log = VAR / "run.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 420) -> None:
        shutil.rmtree(VAR, ignore_errors=True)
        VAR.mkdir(parents=True)
        self.proc = subprocess.Popen([str(LOCAL / "run.sh")], cwd=ROOT, env=ENV, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "Espace is up" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the system did not start; see {self.log}:\n{self.text()[-3000:]}")
            time.sleep(0.5)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mark(self) -> int:
        return len(self.text())

    async def wait_line(self, pattern: str, since: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text()[since:]):
                return True
            await asyncio.sleep(0.2)
        return False

    def pid(self, name: str) -> int:
        path = VAR / "pg" / "data" / "postmaster.pid" if name == "postgres" else VAR / "run" / f"{name}.pid"
        return int(path.read_text().split()[0])

    def stop(self) -> int:
        subprocess.run([str(LOCAL / "run.sh"), "stop"], cwd=ROOT, env=ENV, timeout=300)
        return self.proc.wait(timeout=60)


def script(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(list(args), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def import_members(count: int) -> list[tuple[str, date]]:
    """Registry entries for the stream (the identity CLI, as `make import-members`)."""
    members = [(f"7{uuid.uuid4().int % 10**8:08d}", date(1970 + i % 30, 1 + i % 12, 1 + i % 28)) for i in range(count)]
    path = VAR / "chaos-members.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date"])
        for number, birth in members:
            writer.writerow([number, f"C{number}", "Chaos", "Zoé", birth.isoformat()])
    subprocess.run([sys.executable, "-m", "identity.entrypoints.cli", "import-members", str(path)], cwd=ROOT,
                   env={**ENV, "IDENTITY_DATABASE_URL": f"{DB.replace('postgresql://', 'postgresql+asyncpg://')}/identity"},
                   check=True, capture_output=True, timeout=300)
    return members


# -- the stream and the backlog ---------------------------------------------------------------------------
async def stream(run: Run, http: aiohttp.ClientSession, members: list[tuple[str, date]], prefix: str = "adherent") -> None:
    tasks, start, i = [], time.monotonic(), 0
    while run.stream_on and i < len(members):
        delay = start + i / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(register(run, http, *members[i], prefix=prefix)))
        i += 1
    await asyncio.gather(*tasks)


async def register(run: Run, http: aiohttp.ClientSession, number: str, birth: date, prefix: str = "adherent") -> Request:
    email = f"{prefix}.{number}@example.org"
    request = Request(number, email, time.monotonic())
    run.requests.append(request)
    form = {"membership_number": number, "last_name": "Chaos", "first_name": "Zoé", "birth_date": birth.isoformat(),
            "email": email, "email_confirmation": email, "password": PASSWORD, "password_confirmation": PASSWORD,
            "terms_accepted": True}
    try:
        async with http.post("/api/v1/identity/registrations", json=form, timeout=aiohttp.ClientTimeout(total=20)) as r:
            await r.read()
            request.status = r.status
    except Exception as exc:  # no answer: it may or may not have committed
        request.status = type(exc).__name__
    return request


async def caught_up(timeout: float = 120) -> float | None:
    """When every consumer group (not the replay tool's) has worked off the backlog on the broker now."""
    waited = await consumers_caught_up(BOOTSTRAP, timeout, exclude=frozenset({REPLAY_GROUP}))
    return None if waited is None else time.monotonic()


async def dlq_total() -> dict[str, int]:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    await consumer.start()
    try:
        totals = {}
        for topic in topics.ALL:
            dlq = topics.dead_letter(topic)
            ends = await consumer.end_offsets([TopicPartition(dlq, p) for p in await producer.partitions_for(dlq)])
            totals[topic] = sum(ends.values())
        return totals
    finally:
        await consumer.stop()
        await producer.stop()


async def groups_by_topic() -> dict[str, list[str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        found: dict[str, list[str]] = {}
        for group, _ in await admin.list_consumer_groups():
            if group == REPLAY_GROUP:
                continue
            for tp in await admin.list_consumer_group_offsets(group):
                if group not in found.setdefault(tp.topic, []):
                    found[tp.topic].append(group)
        return found
    finally:
        await admin.close()


# -- faults -------------------------------------------------------------------------------------------
async def begin(run: Run, name: str) -> Phase:
    phase = Phase(name, time.monotonic())
    phase.parked = sum((await dlq_total()).values())  # the count before; the delta at the end
    run.phases.append(phase)
    note(name)
    return phase


async def kill_and_wait(run: Run, sup: Supervisor, phase: Phase, name: str, timeout: float = 180) -> None:
    mark = sup.mark()
    os.kill(sup.pid(name), signal.SIGKILL)
    if await sup.wait_line(rf"{name} restarted", mark, timeout):
        phase.back = time.monotonic()
    else:
        run.failures.append(f"the supervisor did not bring {name} back within {timeout:.0f} s")


async def settle(run: Run, phase: Phase, extra: float = 0) -> None:
    phase.lag_zero = await caught_up()
    if phase.lag_zero is None:
        run.failures.append(f"{phase.name}: consumers did not catch up with the backlog within 120 s")
    if extra:
        await asyncio.sleep(extra)


async def outbox_busy_kill(run: Run, sup: Supervisor, phase: Phase) -> None:
    """kill -9 of identity at a moment its outbox holds unpublished rows."""
    conn = await asyncpg.connect(f"{DB}/identity")
    pending = 0
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if pending:
                break
            await asyncio.sleep(0.005)
    finally:
        await conn.close()
    run.footnotes.append(f"identity killed with {pending} outbox row(s) not yet published")
    await kill_and_wait(run, sup, phase, "identity")


async def poison_every_topic(run: Run) -> None:
    before = await dlq_total()
    consumers = await groups_by_topic()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for topic in topics.ALL:
            await producer.send_and_wait(topic, b"chaos: not an event", key=b"poison")
    finally:
        await producer.stop()
    expected = {topic: len(consumers.get(topic, [])) for topic in topics.ALL}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await dlq_total()
        if all(now[t] - before[t] >= n for t, n in expected.items()):
            break
        await asyncio.sleep(0.5)
    now = await dlq_total()
    for topic in topics.ALL:
        got, groups = now[topic] - before[topic], consumers.get(topic, [])
        if not groups:
            run.footnotes.append(f"poison on {topic}: no consumer group reads it, so nothing parks it")
        else:
            run.footnotes.append(f"poison on {topic}: {got} parked on {topics.dead_letter(topic)} "
                                 f"(groups: {', '.join(groups)})")
            if got < len(groups):
                run.failures.append(f"poison on {topic}: {got} of {len(groups)} consumer groups parked it")


async def park_fix_replay(run: Run, http: aiohttp.ClientSession, members: list[tuple[str, date]]) -> None:
    """notifications refuses these members' e-mails (a constraint: a bug of ours, not an outage),
    parks them after its retries; the constraint is dropped, `make replay-dlq` brings them back."""
    conn = await asyncpg.connect(f"{DB}/notifications")
    try:
        await conn.execute(f"ALTER TABLE deliveries ADD CONSTRAINT {PARK_CONSTRAINT}"
                           " CHECK (recipient NOT LIKE 'parked.%') NOT VALID")
        before = (await dlq_total())[topics.IDENTITY_MEMBERS]
        await asyncio.gather(*(register(run, http, *m, prefix="parked") for m in members))
        deadline = time.monotonic() + 90
        while (await dlq_total())[topics.IDENTITY_MEMBERS] - before < len(members) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await conn.execute(f"ALTER TABLE deliveries DROP CONSTRAINT {PARK_CONSTRAINT}")  # the fix
    finally:
        await conn.close()
    replays = [script("make", "-s", "replay-dlq", f"TOPIC={topics.IDENTITY_MEMBERS}").strip() for _ in range(2)]
    counts = [int(re.search(r"replayed (\d+)", line).group(1)) for line in replays]
    run.footnotes.append(f"make replay-dlq, 1st run: {replays[0]}")
    run.footnotes.append(f"make replay-dlq, 2nd run: {replays[1]}")
    if counts[0] < len(members) or counts[1] != 0:
        run.failures.append(f"replay-dlq replayed {counts[0]} then {counts[1]} (expected ≥ {len(members)} then 0)")


# -- the verdict --------------------------------------------------------------------------------------
def mailbox() -> dict[str, list[str]]:
    """Recipient → Message-IDs of the activation e-mails in the sink (one per file)."""
    found: dict[str, list[str]] = {}
    for path in (VAR / "mail").glob("*.eml"):
        headers = BytesHeaderParser(policy=policy.default).parsebytes(path.read_bytes())
        message_id = str(headers["Message-ID"])
        if message_id.startswith("<activation."):
            found.setdefault(str(headers["To"]).lower(), []).append(message_id)
    return found


async def ground_truth(numbers: list[str]) -> tuple[set[str], dict[str, int]]:
    """Members with an account (identity), and activation deliveries' attempts (notifications)."""
    conn = await asyncpg.connect(f"{DB}/identity")
    try:
        rows = await conn.fetch("SELECT m.membership_number FROM members m JOIN accounts a ON a.member_id = m.id"
                                " WHERE m.membership_number = ANY($1::text[])", numbers)
        accounts = {r[0] for r in rows}
    finally:
        await conn.close()
    conn = await asyncpg.connect(f"{DB}/notifications")
    try:
        rows = await conn.fetch("SELECT recipient, attempts FROM deliveries WHERE kind = 'activation'")
        attempts = {r[0].lower(): r[1] for r in rows}
    finally:
        await conn.close()
    return accounts, attempts


async def wait_delivered(numbers_by_email: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        accounts, _ = await ground_truth(list(numbers_by_email.values()))
        box = mailbox()
        if all(email in box for email, number in numbers_by_email.items() if number in accounts):
            return
        await asyncio.sleep(1)


def table(run: Run, accounts: set[str], attempts: dict[str, int], box: dict[str, list[str]], end: float) -> tuple[str, int, int]:
    header = ("fault", "accepted", "refused", "e-mails expected", "delivered", "lost", "duplicated", "resent",
              "parked", "retried sends", "back after s", "caught up after s")
    rows, totals = [], [0] * 9
    bounds = [p.start for p in run.phases] + [end]
    for i, phase in enumerate(run.phases):
        mine = [r for r in run.requests if bounds[i] <= r.at < bounds[i + 1]]
        accepted = [r for r in mine if r.status == 202]
        expected = [r for r in mine if r.member in accounts]
        delivered = [r for r in expected if r.email in box]
        lost = len(expected) - len(delivered) + sum(1 for r in accepted if r.member not in accounts)
        duplicated = sum(1 for r in mine if len(set(box.get(r.email, ()))) > 1)
        resent = sum(len(box.get(r.email, ())) - len(set(box.get(r.email, ()))) for r in mine)
        retried = sum(1 for r in mine if attempts.get(r.email, 0) > 1)
        values = [len(accepted), len(mine) - len(accepted), len(expected), len(delivered), lost, duplicated, resent,
                  phase.parked, retried]
        totals = [a + b for a, b in zip(totals, values)]
        back = f"{phase.back - phase.start:.1f}" if phase.back else "-"
        lag = f"{phase.lag_zero - phase.start:.1f}" if phase.lag_zero else "-"
        rows.append((phase.name, *map(str, values), back, lag))
    rows.append(("total", *map(str, totals), "", ""))
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [line(header), line(["-" * w for w in widths]), *map(line, rows[:-1]), line(["-" * w for w in widths]), line(rows[-1])]
    return "\n".join(out), totals[4], totals[5]


# -- the run ------------------------------------------------------------------------------------------
async def scenario(run: Run, sup: Supervisor) -> None:
    connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=3)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{PORTS['GATEWAY_PORT']}", connector=connector) as http:
        parked_members = run.members[:3]
        flow = asyncio.create_task(stream(run, http, run.members[3:]))

        phase = await begin(run, "none (steady stream)")
        await asyncio.sleep(8)
        phase.back = phase.start
        await settle(run, phase)

        phase = await begin(run, "kafka: kill -9")
        await kill_and_wait(run, sup, phase, "kafka")
        await settle(run, phase, extra=2)

        for name in ("notifications", "documents", "claims"):
            phase = await begin(run, f"{name}: kill -9")
            await kill_and_wait(run, sup, phase, name)
            await settle(run, phase, extra=2)

        phase = await begin(run, "identity: kill -9, relay busy")
        await outbox_busy_kill(run, sup, phase)
        await settle(run, phase, extra=2)

        phase = await begin(run, "postgres: stop -m immediate")
        mark = sup.mark()
        script(str(LOCAL / "postgres.sh"), "stop", "immediate")
        if await sup.wait_line(r"postgres restarted", mark, 120):
            phase.back = time.monotonic()
        else:
            run.failures.append("the supervisor did not bring postgres back")
        await settle(run, phase, extra=3)

        phase = await begin(run, "smtp sink: down 30 s")
        script(str(LOCAL / "run.sh"), "pause", "smtp")
        await asyncio.sleep(30)
        mark = sup.mark()
        script(str(LOCAL / "run.sh"), "resume", "smtp")
        if await sup.wait_line(r"smtp restarted", mark, 60):
            phase.back = time.monotonic()
        else:
            run.failures.append("the supervisor did not bring the SMTP sink back")
        await settle(run, phase)

        phase = await begin(run, "poison on every topic")
        await poison_every_topic(run)
        phase.back = time.monotonic()
        await settle(run, phase)

        phase = await begin(run, "parked, fixed, replay-dlq")
        await park_fix_replay(run, http, parked_members)
        phase.back = time.monotonic()
        await settle(run, phase)

        run.stream_on = False
        await flow
        phase = await begin(run, "drain (stream stopped)")
        numbers = {r.email: r.member for r in run.requests}
        await wait_delivered(numbers, timeout=150)
        phase.back = time.monotonic()
        await settle(run, phase)
    # parked per phase: the dlq count at the next phase's start (or now) minus at its own
    totals = [p.parked for p in run.phases] + [sum((await dlq_total()).values())]
    for i, p in enumerate(run.phases):
        p.parked = totals[i + 1] - totals[i]


def main() -> int:
    # The broker is killed on purpose: its clients' connection errors are expected, not news.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    started = time.monotonic()
    run = Run()
    sup = Supervisor()
    note(f"starting the system (deploy/local/run.sh) on gateway port {PORTS['GATEWAY_PORT']}, state in {VAR}")
    sup.start()
    try:
        run.members = import_members(int(RATE * 320) + 50)
        # The import is a backlog of its own (documents renders a card per contract): the faults
        # start from a system that has worked it off, so "caught up" measures the fault only.
        imported = time.monotonic()
        if asyncio.run(caught_up(timeout=900)) is None:
            run.failures.append("the consumers did not work off the members' import within 900 s")
        note(f"system up after {imported - started:.0f} s, import worked off after {time.monotonic() - imported:.0f} s; "
             f"{RATE:g} registrations/s from now on")
        asyncio.run(scenario(run, sup))
        end = time.monotonic()
        accounts, attempts = asyncio.run(ground_truth([r.member for r in run.requests]))
        box = mailbox()
    finally:
        code = sup.stop()
    if code != 0:
        run.failures.append(f"the supervisor exited {code} on stop (expected 0)")
    restarts = len(re.findall(r" restarted \(pid", sup.text()))
    text, lost, duplicated = table(run, accounts, attempts, box, end)
    statuses: dict[str, int] = {}
    for r in run.requests:
        if r.status != 202:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    print(text)
    for line in run.footnotes:
        print(f"  {line}")
    print(f"  refused answers: {json.dumps(statuses) if statuses else 'none'}")
    print(f"  supervisor: {restarts} restarts logged in {sup.log}; exit {code} on `run.sh stop`")
    print(f"  {time.monotonic() - started:.0f} s in all, {RATE:g} registrations/s, {os.cpu_count()} cores")
    if lost or duplicated:
        run.failures.append(f"{lost} lost, {duplicated} duplicated")
    for failure in run.failures:
        print(f"FAILED: {failure}")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
