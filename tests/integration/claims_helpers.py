"""What the claims integration tests (and the claims bench) share: families enrolled with a
plan and roles through identity's registry import (its MemberEnrolled events carry them to
claims), accounts, agent tokens, the NOEMIE import, the back-office queue, Kafka reads."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import jwt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import Envelope, Event
from shared.contracts.topics import CLAIMS_CLAIMS
from tests.integration.conftest import PASSWORD, DemoMember
from tests.integration.system import ROOT, System

NOEMIE_COLUMNS = (
    "decompte_id,line_number,membership_number,care_date,act_code,act_label,quantity,amount_charged,base,"
    "secu_rate,secu_paid,participation,practitioner_id,practitioner_sector,optam,payee"
).split(",")


@dataclass(frozen=True)
class Person:
    member: DemoMember
    plan_code: str
    role: str
    coverage_start: date
    member_id: uuid.UUID | None = None


def db_query(system: System, service: str, query: str, *args):
    async def run():
        conn = await asyncpg.connect(system.db_url(service).replace("+asyncpg", ""))
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def publish(system: System, events: list[tuple[Event, str]]) -> None:
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for event, key in events:
                envelope = Envelope.wrap(event, producer="tests", correlation_id=None)
                await producer.send_and_wait(event.topic, envelope.model_dump_json().encode(), key=key.encode(),
                                             headers=[("event_type", event.event_type.encode())])
        finally:
            await producer.stop()

    asyncio.run(run())


def enrol_family(system: System, tmp: Path, plan_code: str, specs: list[tuple[str, str, date, str]],
                 coverage_start: date | None = None) -> list[Person]:
    """specs: (first_name, role, birth_date, last_name). One contract, imported with identity's
    CLI as `make import-members` does; waits for claims's projection of identity's events."""
    start = coverage_start or date(date.today().year, 1, 1)
    contract = f"K{uuid.uuid4().int % 10**9:09d}"
    people = []
    for first, role, born, last in specs:
        number = f"7{uuid.uuid4().int % 10**8:08d}"
        people.append(Person(DemoMember(number, contract, last, first, born), plan_code, role, start))
    path = tmp / f"family-{contract}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date", "plan_code", "role", "coverage_start"])
        for p in people:
            m = p.member
            out.writerow([m.membership_number, m.contract_number, m.last_name, m.first_name, m.birth_date, p.plan_code, p.role, p.coverage_start])
    env = {**os.environ, "IDENTITY_DATABASE_URL": system.db_url("identity")}
    subprocess.run([sys.executable, "-m", "identity.entrypoints.cli", "import-members", str(path)],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
    rows = db_query(system, "identity", "SELECT id, membership_number FROM members WHERE contract_number = $1", contract)
    ids = {r["membership_number"]: r["id"] for r in rows}
    people = [Person(p.member, p.plan_code, p.role, p.coverage_start, ids[p.member.membership_number]) for p in people]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = db_query(system, "claims", "SELECT member_id FROM beneficiaries WHERE contract_number = $1"
                        " AND plan_code = $2 AND role IS NOT NULL", contract, plan_code)
        if len(rows) == len(people):
            return people
        time.sleep(0.2)
    raise AssertionError("claims never projected the family's enrolment")


def log_in(gateway, mailbox, member: DemoMember) -> dict[str, str]:
    from tests.integration.test_account_creation import register_and_activate

    register_and_activate(gateway, mailbox, member)
    response = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def agent_headers(system: System, agent_id: uuid.UUID | None = None) -> dict[str, str]:
    """An agent token signed with identity's key (until identity issues them: the agents work)."""
    from cryptography.hazmat.primitives import serialization

    from identity.adapters.signing import SigningKey

    [path] = json.loads(system.env["IDENTITY_JWT_PRIVATE_KEY_FILES"])
    key = SigningKey.from_private(serialization.load_pem_private_key(Path(path).read_bytes(), password=None))
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": str(agent_id or uuid.uuid4()), "aud": "espace-backoffice", "iss": "espace-identity", "role": "agent",
         "jti": uuid.uuid4().hex, "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=10)).timestamp())},
        key.private, algorithm="EdDSA", headers={"kid": key.kid},
    )
    return {"Authorization": f"Bearer {token}"}


def claims_url(system: System) -> str:
    return f"http://127.0.0.1:{system.env['CLAIMS_PORT']}"


def write_noemie(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, NOEMIE_COLUMNS)
        out.writeheader()
        for row in rows:
            out.writerow({"quantity": 1, "practitioner_id": "", "practitioner_sector": "", "optam": "", "payee": "member", **row})
    return path


def import_noemie(system: System, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAIMS_DATABASE_URL": system.db_url("claims"), "CLAIMS_KAFKA_BOOTSTRAP": system.kafka_bootstrap}
    return subprocess.run([sys.executable, "-m", "claims.entrypoints.cli", "import-reimbursements", str(path)],
                          env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)


def claims_events(system: System, predicate, *, expected: int, timeout: float = 30, settle: float = 1.5) -> list[dict]:
    """Envelopes on claims.claims.v1 (from the start) matching `predicate`; waits for `expected`
    of them, then `settle` seconds more for any extra one."""

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(CLAIMS_CLAIMS, bootstrap_servers=system.kafka_bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        found: list[dict] = []
        loop = asyncio.get_running_loop()
        deadline, settled_at = loop.time() + timeout, None
        try:
            while loop.time() < deadline:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        envelope = json.loads(record.value)
                        if predicate(envelope):
                            found.append(envelope)
                if len(found) >= expected:
                    settled_at = settled_at or loop.time() + settle
                    if loop.time() >= settled_at:
                        break
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


def queued_claim(backoffice: httpx.Client, submission: uuid.UUID) -> dict:
    """The paper claim claims opened from this invoice submission, once it is in the review queue."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cursor = None
        while True:
            page = backoffice.get("/api/v1/claims/backoffice/claims", params={"status": "needs_review", "limit": 100, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            for claim in page.json()["items"]:
                if claim["submission_id"] == str(submission):
                    return claim
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
        time.sleep(0.2)
    raise AssertionError("the paper claim never reached the review queue")
