"""Helpers of the documents integration tests: a logged-in member known to documents, files of
each kind, Kafka in and out, PDFs read as PDFs, agent tokens."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import jwt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import Envelope, Event
from tests.integration.conftest import PASSWORD, DemoMember
from tests.integration.test_account_creation import register_and_activate

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def pdf_bytes(text: str = "Facture", extra: bytes = b"") -> bytes:
    """A small well-formed PDF (one page, its text in a content stream), optionally carrying
    extra bytes in a second stream."""
    content = f"BT /F1 12 Tf 50 750 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if extra:
        objects.append(b"<< /Length %d >>\nstream\n" % len(extra) + extra + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def jpeg_bytes(seed: int = 0) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48), ((seed * 37) % 256, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class Session:
    member: DemoMember
    headers: dict[str, str]
    member_id: str


def log_in(gateway: httpx.Client, member: DemoMember) -> dict[str, str]:
    response = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def documents_db(system, query: str, *args):
    async def run():
        conn = await asyncpg.connect(system.db_url("documents").replace("+asyncpg", ""))
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_until(check, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


def open_session(system, gateway, mailbox, member: DemoMember) -> Session:
    register_and_activate(gateway, mailbox, member)
    headers = log_in(gateway, member)
    member_id = gateway.get("/api/v1/identity/me", headers=headers).json()["member_id"]
    # documents learns the contract from identity's MemberEnrolled.
    wait_until(lambda: documents_db(system, "SELECT 1 FROM members WHERE member_id = $1 AND contract_number IS NOT NULL",
                                    uuid.UUID(member_id)), what="documents knows the member")
    return Session(member, headers, member_id)


def upload(gateway, session: Session, files: list[tuple[str, bytes, str]], **fields):
    form = {"beneficiary": session.member.membership_number, "care_type": "osteopathy",
            "care_date": "2026-11-20", "amount_charged": "60.00", **fields}
    return gateway.post("/api/v1/documents/invoices", headers=session.headers, data=form,
                        files=[("files", f) for f in files], timeout=120)


def submission(gateway, session: Session, submission_id: str) -> dict:
    response = gateway.get(f"/api/v1/documents/submissions/{submission_id}", headers=session.headers)
    assert response.status_code == 200, response.text
    return response.json()


# Once submitted, claims (running in the same system) takes an uploaded claim into review within
# moments: a test waiting for "submitted" may only ever see "in_review".
SUBMITTED = ("submitted", "in_review")


def wait_status(gateway, session, submission_id, status: str | tuple[str, ...], timeout: float = 60) -> dict:
    wanted = (status,) if isinstance(status, str) else status
    return wait_until(lambda: (s := submission(gateway, session, submission_id))["status"] in wanted and s,
                      timeout=timeout, what=f"submission {' or '.join(wanted)}")


def download(gateway, session: Session, document_id: str) -> httpx.Response:
    link = gateway.post(f"/api/v1/documents/{document_id}/download-links", headers=session.headers)
    assert link.status_code == 201, link.text
    return gateway.get(link.json()["url"])  # no bearer header


def publish(system, event: Event, key: str) -> None:
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap)
        await producer.start()
        try:
            envelope = Envelope.wrap(event, producer="claims", correlation_id=None)
            await producer.send_and_wait(event.topic, envelope.model_dump_json().encode(), key=key.encode(),
                                         headers=[("event_type", event.event_type.encode())])
        finally:
            await producer.stop()

    asyncio.run(run())


def events(system, topic: str, event_type: str, match, *, expected: int = 1, timeout: float = 30, settle: float = 0.0) -> list[dict]:
    """Payloads of `event_type` on `topic` for which match(payload) holds (read from the start)."""

    async def run():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=system.kafka_bootstrap, auto_offset_reset="earliest",
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        found: list[dict] = []
        try:
            deadline = time.monotonic() + timeout
            settle_until = None
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    for record in records:
                        body = json.loads(record.value)
                        if body.get("event_type") == event_type and match(body["payload"]):
                            found.append(body["payload"])
                if len(found) >= expected:
                    settle_until = settle_until or time.monotonic() + settle
                    if time.monotonic() >= settle_until:
                        break
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    # Whitespace normalised: table cells wrap their text over lines.
    text = " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


def pdf_xmp(data: bytes) -> bytes:
    from pypdf import PdfReader

    xmp = PdfReader(io.BytesIO(data)).xmp_metadata
    return xmp.stream.get_data() if xmp is not None else b""


def kill_service(system, name: str) -> None:
    """kill -9 of a service and its child processes (documents' PDF workers)."""
    found, todo = [], [int((Path(system.env["ESPACE_VAR"]) / "run" / f"{name}.pid").read_text().split()[0])]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    for pid in found:
        os.kill(pid, signal.SIGKILL)


def restart_services(system) -> None:
    """services.sh start starts what is not running and waits until it is ready."""
    from tests.integration.system import LOCAL, ROOT

    subprocess.run([str(LOCAL / "services.sh"), "start"], env=system.env, cwd=ROOT, check=True, capture_output=True,
                   timeout=180)


def agent_token(key_file: Path, *, agent_id: uuid.UUID | None = None, audience: str = "espace-backoffice",
                role: str = "agent", ttl: int = 600) -> str:
    """An agent's access token signed with identity's key (as identity's agent log-in would)."""
    from cryptography.hazmat.primitives import serialization

    from identity.adapters.signing import SigningKey

    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    key = SigningKey.from_private(private)
    now = int(time.time())
    claims = {"sub": str(agent_id or uuid.uuid4()), "aud": audience, "iss": "espace-identity", "role": role,
              "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid})


def signing_key_file(system) -> Path:
    return Path(json.loads(system.env["IDENTITY_JWT_PRIVATE_KEY_FILES"])[0])


def link_secret(system) -> bytes:
    return system.env.get("DOCUMENTS_LINK_SECRET", os.environ.get("DOCUMENTS_LINK_SECRET", "change-me")).encode()
