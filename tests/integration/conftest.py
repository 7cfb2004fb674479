from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest

from tests.integration.system import ROOT, System

PASSWORD = "Espace-2026!ok"


def signing_key_env(folder: Path) -> dict[str, str]:
    """identity signs with a key the tests hold too (a PEM written outside var/, which start
    wipes), so a test can make expired or wrong-audience tokens with identity's real key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = folder / "identity-signing-key.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return {"IDENTITY_JWT_PRIVATE_KEY_FILES": json.dumps([str(path)])}


def platform_test_env(folder: Path) -> dict[str, str]:
    """The platform tests' hooks: a file whose presence makes notifications' consumer exit right
    after a batch's transaction and before its offset commit; spans exported within 0.5 s."""
    return {
        "NOTIFICATIONS_CONSUMER_CRASH_AFTER_TRANSACTION_FILE": str(folder / "crash-notifications-consumer"),
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


@pytest.fixture(scope="session")
def hooks_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hooks")


@pytest.fixture(scope="session")
def system(tmp_path_factory, hooks_dir) -> Iterator[System]:
    running = System.start(
        extra_env={**signing_key_env(tmp_path_factory.mktemp("keys")), **platform_test_env(hooks_dir)}
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def gateway(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway_url, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class DemoMember:
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    birth_date: date

    @property
    def email(self) -> str:
        return f"adherent.{self.membership_number}@example.org"

    def registration(self, **overrides) -> dict:
        form = {
            "membership_number": self.membership_number,
            "last_name": self.last_name,
            "first_name": self.first_name,
            "birth_date": self.birth_date.isoformat(),
            "email": self.email,
            "email_confirmation": self.email,
            "password": PASSWORD,
            "password_confirmation": PASSWORD,
            "terms_accepted": True,
        }
        form.update(overrides)
        return form


class Registry:
    """Members imported into the running system with the identity CLI, as `make import-members`
    does; each test takes members nobody else uses."""

    def __init__(self, system: System, tmp: Path) -> None:
        self.system = system
        self.tmp = tmp
        self.free: list[DemoMember] = []

    def take(self) -> DemoMember:
        if not self.free:
            self._import(40)
        return self.free.pop()

    def _import(self, count: int) -> None:
        batch = []
        for i in range(count):
            number = f"9{uuid.uuid4().int % 10**8:08d}"
            batch.append(
                DemoMember(number, f"C{number}", "Lefèvre-N'Diaye", "Zoé", date(1980 + i % 20, 1 + i % 12, 1 + i % 28))
            )
        path = self.tmp / f"members-{uuid.uuid4().hex}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date"])
            for m in batch:
                writer.writerow([m.membership_number, m.contract_number, m.last_name, m.first_name, m.birth_date])
        env = {**os.environ, "IDENTITY_DATABASE_URL": self.system.db_url("identity")}
        subprocess.run(
            [sys.executable, "-m", "identity.entrypoints.cli", "import-members", str(path)],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=60,
        )
        self.free.extend(batch)


@pytest.fixture(scope="session")
def registry(system: System, tmp_path_factory) -> Registry:
    return Registry(system, tmp_path_factory.mktemp("registry"))


class Mailbox:
    """Reads the .eml files the SMTP sink wrote."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def messages_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if address.lower() in str(message["To"]).lower():
                found.append(message)
        return found

    def wait_for(self, address: str, count: int = 1, timeout: float = 60) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages_to(address)
            if len(messages) >= count:
                return messages
            time.sleep(0.1)
        raise AssertionError(f"{count} e-mail(s) to {address} expected within {timeout}s, got {len(self.messages_to(address))}")


@pytest.fixture(scope="session")
def mailbox(system: System) -> Mailbox:
    return Mailbox(system.mail_dir)


def activation_token(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    marker = "/activation?token="
    start = body.index(marker) + len(marker)
    return body[start:].split()[0]


# -- management-centre agents -------------------------------------------------------------------

AGENT_PASSWORD = "Back-Office-2026!ok"


def run_create_agent(system: System, email: str, name: str) -> str:
    """`make create-agent`'s command against the running system; returns the one-time link."""
    env = {**os.environ, "IDENTITY_DATABASE_URL": system.db_url("identity"), "IDENTITY_PUBLIC_BASE_URL": system.gateway_url}
    result = subprocess.run(
        [sys.executable, "-m", "identity.entrypoints.cli", "create-agent", "--email", email, "--name", name],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=60,
    )
    return next(line for line in result.stdout.splitlines() if "/agent/mot-de-passe?token=" in line).strip()


def link_token(link: str) -> str:
    return link.split("token=", 1)[1]


def totp_now(secret: str, *, after: float | None = None) -> str:
    """The authenticator's code. A code serves once: pass `after` (the time of the last code
    used) to wait for the next 30-second step."""
    from identity.domain import totp

    now = time.time()
    if after is not None and totp.step_at(now) <= totp.step_at(after):
        time.sleep((totp.step_at(after) + 1) * totp.PERIOD_S - now + 0.05)
        now = time.time()
    return totp.code_at(secret, now)


class Agent:
    """A logged-in agent. `token` / `headers` stay usable for a whole test session: the access
    token (15 minutes) is renewed with the refresh token when it is 10 minutes old."""

    def __init__(self, client: httpx.Client, agent_id: str, email: str, totp_secret: str, tokens: dict) -> None:
        self.client = client
        self.id = agent_id
        self.email = email
        self.totp_secret = totp_secret
        self._tokens = tokens
        self._at = time.monotonic()

    @property
    def token(self) -> str:
        if time.monotonic() - self._at > 600:
            response = self.client.post(
                "/api/v1/identity/agent-sessions/refresh", json={"refresh_token": self._tokens["refresh_token"]}
            )
            response.raise_for_status()
            self._tokens, self._at = response.json(), time.monotonic()
        return self._tokens["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Agents:
    """Makes agents the way a management centre does: `identity create-agent`, the password set
    from the printed link (which enrols the TOTP secret), a log-in with the current code."""

    def __init__(self, system: System, client: httpx.Client) -> None:
        self.system = system
        self.client = client

    def create(self, name: str = "Agnès Gestion") -> Agent:
        email = f"agent.{uuid.uuid4().hex[:12]}@mutuelle.example"
        link = run_create_agent(self.system, email, name)
        response = self.client.post(
            "/api/v1/identity/agent-passwords",
            json={"token": link_token(link), "password": AGENT_PASSWORD, "password_confirmation": AGENT_PASSWORD},
        )
        assert response.status_code == 200, response.text
        enrolled = response.json()
        secret = enrolled["totp_secret"]
        response = self.client.post(
            "/api/v1/identity/agent-sessions",
            json={"email": email, "password": AGENT_PASSWORD, "totp_code": totp_now(secret)},
        )
        assert response.status_code == 200, response.text
        return Agent(self.client, enrolled["agent_id"], email, secret, response.json())


@pytest.fixture(scope="session")
def agents(system: System, gateway: httpx.Client) -> Agents:
    return Agents(system, gateway)


@pytest.fixture(scope="session")
def agent(agents: Agents) -> Agent:
    """One back-office agent for the session: `agent.headers` on back-office routes."""
    return agents.create()


@pytest.fixture(scope="module")
def backoffice(system: System, agent: Agent) -> Iterator[httpx.Client]:
    """The back office through the gateway, with a real agent (identity's create-agent, TOTP)."""
    with httpx.Client(base_url=system.gateway_url, headers=agent.headers, timeout=30) as client:
        yield client


# -- events from services that do not exist yet (or that a test stands in for) -----------------


def publish_events(system: System, items: list, *, producer: str) -> list:
    """Write events to the broker the way services' outbox relays do: the JSON envelope, the key
    (member id), the event_type / correlation / content-type headers. `items` holds (event, key)
    pairs or Envelopes already made (publishing one again is a redelivery: same event id).
    Returns the envelopes, in order, on one producer connection (so per-key order holds)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from shared.contracts.envelope import Envelope

    def envelope_of(item) -> tuple[Envelope, str, str]:
        if isinstance(item, tuple) and isinstance(item[0], Envelope):
            return item
        event, key = item
        return Envelope.wrap(event, producer=producer, correlation_id=f"it-{uuid.uuid4().hex}"), event.topic, key

    made = [envelope_of(item) for item in items]

    async def go() -> None:
        producer_ = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap, enable_idempotence=True, acks="all")
        await producer_.start()
        try:
            for envelope, topic, key in made:
                headers = [
                    ("event_type", envelope.event_type.encode()),
                    ("x-correlation-id", (envelope.correlation_id or "").encode()),
                    ("content-type", b"application/json"),
                ]
                await producer_.send_and_wait(topic, envelope.model_dump_json().encode(), key=key.encode(), headers=headers)
        finally:
            await producer_.stop()

    asyncio.run(go())
    return made
