"""documents under load, on the real system (started here on bench ports), through the gateway.

    .venv/bin/python -m bench.documents_load [--uploads 10] [--renders 40] [--settled 50] [--settled-rate 2]

Prints:
1. PDFs rendered per second on one core: --renders statements (3 lines, the ClaimSettled
   context documents builds) through the service's own renderer (documents.adapters.pdf:
   PdfRenderer with one worker process, WeasyPrint, PDF/A-3b, tagged), one after the other; the
   worker's CPU seconds per PDF give the rate of one core whatever else the machine does, and the
   machine's limit is that times its cores (the service renders with DOCUMENTS_RENDER_WORKERS
   processes, 1 by default: its limit is one core's rate).
2. Upload throughput through the gateway: --uploads invoices of one 5 MB PDF each (5,000,000
   bytes, the per-file limit), one after the other, then one 15 MB upload (three 5 MB files, the
   per-request limit) while documents' resident memory (VmRSS of its uvicorn process, from /proc)
   is sampled every 50 ms, and its VmHWM (reset first): baseline, peak during the request, peak
   until the three files are scanned by clamd, growth against the 32 MiB goal.
3. ClaimSettled → statement downloadable: --settled ClaimSettled events published at
   --settled-rate per second (open loop, as claims's relay would); for each, the time until the
   statement's row is committed in documents, and until a download link made through the gateway
   serves the PDF (200, application/pdf): p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, date, datetime

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer

from bench.common import cpu_seconds, p, percentiles, proc_status, reset_peak_rss, service_pid
from shared.contracts.claims import ClaimSettled, SettledLine
from shared.contracts.envelope import Envelope
from tests.integration.conftest import Mailbox, Registry
from tests.integration.documents_support import Session, open_session, pdf_bytes
from tests.integration.system import System

MB = 1000 * 1000
MIB = 1024 * 1024
FILE_BYTES = 5 * MB  # the per-file limit (DOCUMENTS_MAX_FILE_BYTES)
GOAL_GROWTH_MIB = 32.0
SAMPLE_S = 0.05


def five_mb_pdf(tag: str) -> bytes:
    """A well-formed PDF of exactly 5,000,000 bytes: random bytes in a second stream (unique per
    file, so no two uploads dedupe, and nothing clamd can skip)."""
    filler = FILE_BYTES - len(pdf_bytes(f"Facture {tag}", extra=b"x")) + 1
    while True:
        data = pdf_bytes(f"Facture {tag}", extra=os.urandom(filler))
        if len(data) == FILE_BYTES:
            return data
        filler -= len(data) - FILE_BYTES  # the stream's /Length has more digits


def settled_event(holder: uuid.UUID, contract: str, name: str, claim_id: uuid.UUID) -> ClaimSettled:
    """A settled claim of three lines (GP visit, pharmacy, osteopathy), as claims publishes it."""
    acts = [("G", "Consultation généraliste", 3000, 3000, 70, 1900, 200, 900, "member"),
            ("PH4", "Médicaments", 1000, 1000, 30, 200, 100, 700, "practitioner"),
            ("OST", "Séance d'ostéopathie", 6000, 0, 0, 0, 0, 4000, "member")]
    lines = [
        SettledLine(line_id=uuid.uuid4(), line_number=i, beneficiary_member_id=holder, beneficiary_name=name,
                    care_date=date(2026, 11, 20), act_code=code, act_label=label, quantity=1,
                    amount_charged_cents=charged, secu_base_cents=base, secu_rate_pct=rate, secu_paid_cents=secu,
                    participation_cents=part, mutuelle_paid_cents=mutuelle,
                    out_of_pocket_cents=charged - secu - mutuelle, payee=payee, status="paid")
        for i, (code, label, charged, base, rate, secu, part, mutuelle, payee) in enumerate(acts, 1)
    ]
    return ClaimSettled(
        claim_id=claim_id, contract_number=contract, holder_member_id=holder, beneficiary_member_ids=[holder],
        source="noemie", external_ref=f"BENCH-{claim_id.hex[:10]}", submission_id=None, status="settled",
        lines=lines, total_charged_cents=sum(l.amount_charged_cents for l in lines),
        total_secu_paid_cents=sum(l.secu_paid_cents for l in lines),
        total_mutuelle_paid_cents=sum(l.mutuelle_paid_cents for l in lines),
        total_out_of_pocket_cents=sum(l.out_of_pocket_cents for l in lines), settled_at=datetime.now(UTC),
    )


# --- 1. PDFs per second on one core -----------------------------------------------------------


async def render_rate(count: int) -> None:
    from documents.adapters.pdf import PdfRenderer
    from documents.adapters.tables import Member
    from documents.config import DocumentsSettings
    from documents.service_layer import statements

    class Mutuelle:  # what statement_context reads of the service's context
        settings = DocumentsSettings()

        def mutuelle(self) -> dict:
            s = self.settings
            return {"name": s.mutuelle_name, "address": s.mutuelle_address, "registration": s.mutuelle_registration,
                    "phone": s.mutuelle_phone}

    holder = Member(member_id=uuid.uuid4(), contract_number="C900000001", first_name="Zoé",
                    last_name="Lefèvre-N'Diaye", paperless=True,
                    postal_address={"line1": "3 rue des Lilas", "postal_code": "69003", "city": "Lyon", "country": "FR"})
    contexts = [statements.statement_context(Mutuelle(), holder, settled_event(holder.member_id, holder.contract_number,
                                                                              holder.full_name, uuid.uuid4()))
                for _ in range(count)]
    renderer = PdfRenderer(workers=1)
    try:
        await renderer.warm_up()
        [worker] = list(renderer._executor()._processes)  # the one worker process's pid
        await renderer.render("statement.html", contexts[0])  # the template's first use, out of the figures
        cpu0, wall0 = cpu_seconds(worker), time.perf_counter()
        times, pages, size = [], 0, 0
        for context in contexts:
            t0 = time.perf_counter()
            pdf = await renderer.render("statement.html", context)
            times.append((time.perf_counter() - t0) * 1000)
            pages, size = pages + pdf.pages, size + len(pdf.data)
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds(worker) - cpu0
    finally:
        renderer.close()
    per_core = count / cpu if cpu else float("nan")
    cores = os.cpu_count() or 1
    print(f"\n1. statement PDFs (3 lines, {pages / count:.0f} page(s), {size / count / 1000:.0f} kB each), {count} rendered"
          f" one after the other by PdfRenderer(workers=1)")
    print(percentiles("   render time per PDF (wall, as the caller waits)", times))
    print(f"   {'wall-clock rate':<43} {count / wall:7.2f} PDFs/s")
    print(f"   {'worker CPU per PDF':<43} {cpu / count * 1000:7.1f} ms   -> {per_core:.2f} PDFs/s on one core")
    print(f"   {'machine limit (' + str(cores) + ' cores, one worker each)':<43} {per_core * cores:7.2f} PDFs/s;"
          f" the service as configured (DOCUMENTS_RENDER_WORKERS=1): {per_core:.2f} PDFs/s")


# --- 2. uploads -------------------------------------------------------------------------------


def upload_form(session: Session, files: list[tuple[str, bytes]]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in (("beneficiary", session.member.membership_number), ("care_type", "osteopathy"),
                        ("care_date", "2026-11-20"), ("amount_charged", "60.00")):
        form.add_field(name, value)
    for name, data in files:
        form.add_field("files", data, filename=name, content_type="application/pdf")
    return form


async def wait_scanned(http: aiohttp.ClientSession, session: Session, submission_ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    pending = set(submission_ids)
    while pending and time.monotonic() < deadline:
        for sid in list(pending):
            async with http.get(f"/api/v1/documents/submissions/{sid}", headers=session.headers) as r:
                if (await r.json())["status"] != "scanning":
                    pending.discard(sid)
        await asyncio.sleep(0.2)
    if pending:
        raise SystemExit(f"{len(pending)} submission(s) still scanning after {timeout:.0f} s")


async def uploads(system: System, session: Session, count: int) -> None:
    pid = service_pid(system, "documents")
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(system.gateway_url, timeout=timeout) as http:

        async def post(files: list[tuple[str, bytes]]) -> tuple[float, dict]:
            t0 = time.perf_counter()
            async with http.post("/api/v1/documents/invoices", data=upload_form(session, files),
                                 headers=session.headers) as r:
                body = await r.json()
                assert r.status == 202, (r.status, body)
            return time.perf_counter() - t0, body

        first_rss = proc_status(pid)["VmRSS"]
        await post([("warm-up.pdf", pdf_bytes(f"warm-up {uuid.uuid4()}"))])
        singles = [five_mb_pdf(f"single {i} {uuid.uuid4()}") for i in range(count)]
        seconds, ids = [], []
        for i, data in enumerate(singles):
            elapsed, body = await post([(f"facture-{i}.pdf", data)])
            seconds.append(elapsed)
            ids.append(body["submission_id"])
        total = sum(seconds)
        print(f"\n2. uploads through the gateway (POST /api/v1/documents/invoices, multipart, one after the other)")
        print(f"   {count} x one 5 MB PDF:  {count * FILE_BYTES / total / MB:7.1f} MB/s"
              f"   per upload p50 {p([s * 1000 for s in seconds], 50):6.0f} ms, max {max(seconds) * 1000:6.0f} ms")

        # Quiet before the memory figure: every earlier file scanned, the process settled.
        await wait_scanned(http, session, ids)
        await asyncio.sleep(2)
        files = [(f"scan-{i}.pdf", five_mb_pdf(f"multi {i} {uuid.uuid4()}")) for i in range(3)]
        reset = reset_peak_rss(pid)
        baseline = proc_status(pid)["VmRSS"]
        peaks = {"request": baseline, "scan": baseline}
        phase = "request"
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                rss = proc_status(pid)["VmRSS"]
                peaks[phase] = max(peaks[phase], rss)
                await asyncio.sleep(SAMPLE_S)

        sampler = asyncio.create_task(sample())
        elapsed, body = await post(files)
        hwm_request = proc_status(pid)["VmHWM"] if reset else 0
        phase = "scan"
        await wait_scanned(http, session, [body["submission_id"]])
        done.set()
        await sampler
        after = proc_status(pid)
        request_peak = max(peaks["request"], hwm_request)
        overall_peak = max(request_peak, peaks["scan"], after["VmHWM"] if reset else 0)
        growth = (overall_peak - baseline) / MIB
        print(f"   one 15 MB upload (3 x 5 MB): {3 * FILE_BYTES / elapsed / MB:7.1f} MB/s ({elapsed * 1000:.0f} ms)")
        print(f"   documents RSS (VmRSS every {SAMPLE_S * 1000:.0f} ms{', and VmHWM reset before' if reset else ''}):"
              f" baseline {baseline / MIB:.1f} MiB, peak during the request {request_peak / MIB:.1f} MiB,"
              f" peak until scanned {overall_peak / MIB:.1f} MiB, after {after['VmRSS'] / MIB:.1f} MiB"
              f" (before the first upload of the run: {first_rss / MIB:.1f} MiB)")
        print(f"   growth {growth:+.1f} MiB (goal <= {GOAL_GROWTH_MIB:g} MiB: {'ok' if growth <= GOAL_GROWTH_MIB else 'MISSED'})")


# --- 3. ClaimSettled -> statement downloadable ------------------------------------------------


async def settled_to_downloadable(system: System, session: Session, count: int, rate: float) -> None:
    holder = uuid.UUID(session.member_id)
    name = f"{session.member.first_name} {session.member.last_name}"
    events = [settled_event(holder, session.member.contract_number, name, uuid.uuid4()) for _ in range(count)]
    sent: dict[uuid.UUID, float] = {}
    committed: dict[uuid.UUID, float] = {}
    downloadable: dict[uuid.UUID, float] = {}
    failures: list[str] = []
    db = await asyncpg.connect(system.db_url("documents").replace("+asyncpg", ""))
    producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=0)
    await producer.start()
    http = aiohttp.ClientSession(system.gateway_url)
    try:

        async def fetch(claim_id: uuid.UUID, document_id: uuid.UUID) -> None:
            async with http.post(f"/api/v1/documents/{document_id}/download-links", headers=session.headers) as r:
                link = await r.json()
                if r.status != 201:
                    failures.append(f"link {r.status}")
                    return
            async with http.get(link["url"]) as r:
                data = await r.read()
                if r.status != 200 or r.headers.get("content-type") != "application/pdf" or not data.startswith(b"%PDF"):
                    failures.append(f"download {r.status}")
                    return
            downloadable[claim_id] = time.perf_counter()

        async def publish(event: ClaimSettled) -> None:
            envelope = Envelope.wrap(event, producer="claims", correlation_id=f"bench-{uuid.uuid4().hex}")
            sent[event.claim_id] = time.perf_counter()
            await producer.send_and_wait(event.topic, envelope.model_dump_json().encode(), key=str(holder).encode(),
                                         headers=[("event_type", event.event_type.encode()),
                                                  ("content-type", b"application/json")])

        stop = asyncio.Event()
        fetches: list[asyncio.Task] = []

        async def watch() -> None:
            """Polls documents's table every 20 ms for the statements of the claims sent."""
            while not stop.is_set() or len(committed) < len(sent):
                waiting = [c for c in sent if c not in committed]
                if waiting:
                    rows = await db.fetch("SELECT claim_id, id FROM documents WHERE kind = 'statement' AND claim_id = ANY($1)",
                                          waiting)
                    now = time.perf_counter()
                    for row in rows:
                        committed[row["claim_id"]] = now
                        fetches.append(asyncio.create_task(fetch(row["claim_id"], row["id"])))
                if stop.is_set() and time.perf_counter() > deadline[0]:
                    return
                await asyncio.sleep(0.02)

        deadline = [float("inf")]
        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        tasks = []
        for i, event in enumerate(events):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publish(event)))
        await asyncio.gather(*tasks)
        deadline[0] = time.perf_counter() + 120
        stop.set()
        await watcher
        await asyncio.gather(*fetches)
    finally:
        await http.close()
        await producer.stop()
        await db.close()
    to_row = [(committed[c] - sent[c]) * 1000 for c in committed]
    to_download = [(downloadable[c] - sent[c]) * 1000 for c in downloadable]
    missing = count - len(downloadable)
    print(f"\n3. ClaimSettled -> statement, {count} events at {rate:g}/s (open loop, one Kafka producer)")
    print(percentiles("   -> statement committed in documents (20 ms poll)", to_row))
    print(percentiles("   -> PDF served through a download link", to_download,
                      extra=f" missing={missing} failures={len(failures)}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=10, help="how many single 5 MB uploads")
    parser.add_argument("--renders", type=int, default=40, help="statement PDFs rendered for the one-core rate")
    parser.add_argument("--settled", type=int, default=50, help="ClaimSettled events published")
    parser.add_argument("--settled-rate", type=float, default=2.0, help="ClaimSettled events per second")
    args = parser.parse_args()
    print(f"documents bench: {os.cpu_count()} cores, shared with whatever else runs here")
    asyncio.run(render_rate(args.renders))
    system = System.start("docbench", extra_env={"GATEWAY_RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING"})
    try:
        session = open_session(system, _client(system), Mailbox(system.mail_dir), Registry(system, system.mail_dir.parent).take())
        print(f"system up ({system.mode}), member {session.member.membership_number} logged in")
        asyncio.run(uploads(system, session, args.uploads))
        asyncio.run(settled_to_downloadable(system, session, args.settled, args.settled_rate))
    finally:
        system.stop()


def _client(system: System):
    import httpx

    return httpx.Client(base_url=system.gateway_url, timeout=30)


if __name__ == "__main__":
    main()
