"""The gateway in front of the real services: what it refuses itself (bad tokens, floods,
oversized bodies, stalled or absent services), the headers it puts on every answer, and the
correlation id it hands on to the services, their logs and their Kafka events."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.topics import IDENTITY_MEMBERS
from shared.platform.auth import AUDIENCE, ISSUER
from tests.integration.conftest import PASSWORD, activation_token
from tests.integration.system import LOCAL, ROOT, System

PROBLEM = "application/problem+json"
JWKS = "/api/v1/identity/.well-known/jwks.json"
ME = "/api/v1/identity/me"


# --- helpers ----------------------------------------------------------------------------------


def new_correlation_id() -> str:
    return f"it-gw-{uuid.uuid4().hex}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    return problem


def json_lines(path: Path) -> Iterator[dict]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def wait_for_log(path: Path, correlation_id: str, timeout: float = 10, **fields) -> dict:
    """The first JSON log line of `path` with this correlation id (and these field values)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in json_lines(path):
            if line.get("correlation_id") == correlation_id and all(line.get(k) == v for k, v in fields.items()):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line with correlation_id={correlation_id} {fields} in {path}")
        time.sleep(0.1)


def access_line(system: System, correlation_id: str) -> dict:
    return wait_for_log(system.log_dir / "gateway.log", correlation_id, logger="gateway.access")


class Signer:
    """Tokens signed with identity's own key (the test system starts identity with a key file the
    tests hold, see conftest), so expired or wrong-audience tokens fail for that reason only."""

    def __init__(self, system: System, gateway: httpx.Client) -> None:
        [key_file] = json.loads(system.env["IDENTITY_JWT_PRIVATE_KEY_FILES"])
        self.key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        assert isinstance(self.key, Ed25519PrivateKey)
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        published = gateway.get(JWKS).json()["keys"]
        [self.kid] = [k["kid"] for k in published if k.get("x") == x]

    def token(self, *, key: Ed25519PrivateKey | None = None, kid: str | None = None, **overrides) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "mid": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return jwt.encode(claims, key or self.key, algorithm="EdDSA", headers={"kid": kid or self.kid})


@pytest.fixture(scope="module")
def signer(system, gateway) -> Signer:
    return Signer(system, gateway)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- tokens -----------------------------------------------------------------------------------


def test_a_token_signed_with_identitys_key_goes_through(gateway, signer):
    # The control for the refusals below: the same kind of token, nothing wrong with it, reaches
    # identity (which knows no such account: its own 404, not the gateway's 401).
    response = gateway.get(ME, headers=bearer(signer.token()))
    assert response.status_code == 404, response.text
    assert response.json()["code"] != "invalid_token"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())  # someone else's account, same signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _other_algorithm(signer: Signer) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "mid": str(uuid.uuid4()),
              "iat": now, "exp": now + 300, "jti": "hs"}
    return jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": signer.kid})


BAD_TOKENS = {
    "missing": lambda s: None,
    "not-a-bearer": lambda s: "Basic YWRtaW46YWRtaW4=",
    "not-a-jwt": lambda s: "Bearer not.a.jwt",
    "tampered": lambda s: "Bearer " + _tampered(s.token()),
    "unknown-key": lambda s: "Bearer " + s.token(key=Ed25519PrivateKey.generate(), kid="not-identitys-key"),
    "own-key-identitys-kid": lambda s: "Bearer " + s.token(key=Ed25519PrivateKey.generate()),
    "expired": lambda s: "Bearer " + s.token(iat=int(time.time()) - 1200, nbf=int(time.time()) - 1200,
                                             exp=int(time.time()) - 300),
    "wrong-audience": lambda s: "Bearer " + s.token(aud="autre-application"),
    "wrong-issuer": lambda s: "Bearer " + s.token(iss="https://ailleurs.example"),
    "other-algorithm": lambda s: "Bearer " + _other_algorithm(s),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_protected_route_refuses_a_bad_token_with_401_before_the_service(system, gateway, signer, case):
    correlation_id = new_correlation_id()
    headers = {"X-Correlation-ID": correlation_id}
    authorization = BAD_TOKENS[case](signer)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = gateway.get(ME, headers=headers)
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-correlation-id"] == correlation_id
    # The gateway answered itself: identity was not asked.
    line = access_line(system, correlation_id)
    assert (line["status"], line["outcome"], line["upstream"]) == (401, "invalid_token", "identity")


# --- rate limits ------------------------------------------------------------------------------


def test_the_21st_log_in_for_one_identifier_within_a_minute_gets_the_gateways_429(system, gateway):
    identifier = f"8{uuid.uuid4().int % 10**8:08d}"  # nobody's
    answers = []
    for _ in range(21):
        answers.append(gateway.post("/api/v1/identity/sessions", json={"identifier": identifier, "password": "Faux-2026!x"}))
    # The first 20 reach identity: wrong credentials, then identity's own throttle (429
    # too_many_attempts after 5 failures). Never the gateway's limit.
    codes = [(a.status_code, a.json()["code"]) for a in answers[:20]]
    assert codes[0][0] == 401
    assert all(code != "too_many_requests" for _, code in codes), codes
    assert (429, "too_many_attempts") in codes, codes
    # The 21st: the gateway's per-account bucket (20/60) is empty.
    problem = assert_problem(answers[20], 429, "too_many_requests")
    assert "tentatives" in problem["detail"]
    assert 1 <= int(answers[20].headers["retry-after"]) <= 60


def test_the_per_account_limit_counts_one_membership_number_not_the_address(system, gateway, registry):
    number = f"8{uuid.uuid4().int % 10**8:08d}"
    form = registry.take().registration(membership_number=number)  # a well-formed form, nobody's number
    statuses = [gateway.post("/api/v1/identity/registrations", json=form).status_code for _ in range(20)]
    assert statuses == [202] * 20
    correlation_id = new_correlation_id()
    refused = gateway.post("/api/v1/identity/registrations", json=form, headers={"X-Correlation-ID": correlation_id})
    assert_problem(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert access_line(system, correlation_id)["outcome"] == "rate_limited_account"
    # The same address, another membership number: still welcome.
    other = dict(form, membership_number=f"8{uuid.uuid4().int % 10**8:08d}")
    assert gateway.post("/api/v1/identity/registrations", json=other).status_code == 202


# --- body caps --------------------------------------------------------------------------------

OVERSIZED_JSON = b'{"token": "' + b"x" * 70_000 + b'"}'  # the JSON routes' cap is 64 KiB


@pytest.mark.parametrize("path", ["/api/v1/identity/activations", "/api/v1/identity/registrations"])
def test_a_declared_body_over_the_cap_gets_413(gateway, path):
    response = gateway.post(path, content=OVERSIZED_JSON, headers={"Content-Type": "application/json"})
    problem = assert_problem(response, 413, "payload_too_large")
    assert "64 Ko" in problem["detail"]


def test_a_huge_declared_body_gets_413_before_it_is_sent(system):
    # Headers only, with Expect: 100-continue: the gateway answers from the Content-Length alone.
    with socket.create_connection(("127.0.0.1", int(system.env["GATEWAY_PORT"])), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/identity/activations HTTP/1.1\r\nHost: espace\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer.lower()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/identity/activations",  # streamed to identity, cut at the cap
        "/api/v1/identity/registrations",  # rate-limited: read whole (within the cap) first
    ],
)
def test_a_chunked_body_over_the_cap_gets_413(gateway, path):
    def body() -> Iterator[bytes]:
        yield b'{"token": "'
        for _ in range(10):  # 10 × 8 KiB: past the 64 KiB cap, with no Content-Length
            yield b"x" * 8192
        yield b'"}'

    response = gateway.post(path, content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload_too_large")


# --- security headers -------------------------------------------------------------------------

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (JWKS, 200),  # a service's answer
        (ME, 401),  # the gateway's own refusal
        ("/api/v1/nowhere/at-all", 404),  # no such service
        ("/healthz", 200),  # the gateway's own route
    ],
)
def test_every_answer_carries_the_security_headers(gateway, path, status):
    response = gateway.get(path)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name


# --- correlation id ---------------------------------------------------------------------------


async def _events_with_correlation_id(
    bootstrap: str, correlation_id: str, want: set[str], timeout: float = 60
) -> dict[str, tuple[dict, dict]]:
    """event_type → (headers, envelope) of the messages on identity.members.v1 carrying the id."""
    consumer = AIOKafkaConsumer(
        IDENTITY_MEMBERS,
        bootstrap_servers=bootstrap,
        group_id=f"it-gateway-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, tuple[dict, dict]] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not want <= set(found):
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers or ()}
                    if headers.get("x-correlation-id") == correlation_id:
                        envelope = json.loads(record.value)
                        found[envelope["event_type"]] = (headers, envelope)
    finally:
        await consumer.stop()
    return found


def test_the_correlation_id_follows_a_registration_into_logs_and_events(system, gateway, mailbox, registry):
    member = registry.take()
    correlation_id = new_correlation_id()
    headers = {"X-Correlation-ID": correlation_id}
    response = gateway.post("/api/v1/identity/registrations", json=member.registration(), headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["x-correlation-id"] == correlation_id

    # On to Kafka: the outbox row's headers and the envelope, for both events of the registration.
    want = {"identity.MemberRegistered", "identity.ActivationLinkIssued"}
    events = asyncio.run(_events_with_correlation_id(system.kafka_bootstrap, correlation_id, want))
    assert want <= set(events), f"events carrying {correlation_id}: {sorted(events)}"
    for kafka_headers, envelope in events.values():
        assert envelope["correlation_id"] == correlation_id
        assert envelope["producer"] == "identity"
        assert "traceparent" in kafka_headers

    # In the logs: the gateway's access line, and identity's own lines for this member's requests.
    line = access_line(system, correlation_id)
    assert (line["path"], line["status"], line["upstream"]) == ("/api/v1/identity/registrations", 202, "identity")
    # (identity logs nothing on a successful registration; activation and log-in are logged,
    # and a client keeps its id across the steps of one journey.)
    token = activation_token(mailbox.wait_for(member.email)[0])
    assert gateway.post("/api/v1/identity/activations", json={"token": token}, headers=headers).status_code == 200
    session = gateway.post(
        "/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD}, headers=headers
    )
    assert session.status_code == 200, session.text
    assert session.headers["x-correlation-id"] == correlation_id
    opened = wait_for_log(system.log_dir / "identity.log", correlation_id, msg="session opened")
    assert opened["service"] == "identity"


def test_the_correlation_id_reaches_the_e_mail_sent_log_line(system, gateway, mailbox, registry):
    member = registry.take()
    correlation_id = new_correlation_id()
    response = gateway.post(
        "/api/v1/identity/registrations", json=member.registration(), headers={"X-Correlation-ID": correlation_id}
    )
    assert response.status_code == 202, response.text
    mailbox.wait_for(member.email)
    wait_for_log(system.log_dir / "notifications.log", correlation_id, timeout=3, msg="e-mail sent")


def test_an_invalid_correlation_id_is_replaced_not_passed_on(system, gateway):
    response = gateway.get(JWKS, headers={"X-Correlation-ID": "bad id\twith spaces"})
    returned = response.headers["x-correlation-id"]
    assert returned != "bad id\twith spaces" and 8 <= len(returned) <= 64
    assert access_line(system, returned)["path"] == JWKS


# --- a stalled or absent service --------------------------------------------------------------


def _pid(system: System, service: str) -> int:
    return int((Path(system.env["ESPACE_VAR"]) / "run" / f"{service}.pid").read_text().strip())


def _wait_until_answers(gateway: httpx.Client, path: str, headers: dict[str, str], timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = gateway.get(path, headers=headers)
        if response.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_a_stalled_service_gives_504_within_the_timeout_not_a_hang(system, gateway, signer):
    # claims: its JSON routes have the plain timeout (GATEWAY_TIMEOUT_S, 10 s by default);
    # documents' routes have the upload one (120 s).
    timeout_s = float(system.env.get("GATEWAY_TIMEOUT_S", "10"))
    auth = bearer(signer.token())
    path = "/api/v1/claims/no-such-thing"
    before = _wait_until_answers(gateway, path, auth)
    assert before.status_code == 404  # the service's own answer while it runs
    pid = _pid(system, "claims")
    correlation_id = new_correlation_id()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = gateway.get(path, headers={**auth, "X-Correlation-ID": correlation_id}, timeout=timeout_s + 20)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_problem(response, 504, "upstream_timeout")
    assert timeout_s - 1 <= elapsed <= timeout_s + 5, elapsed
    assert access_line(system, correlation_id)["outcome"] == "upstream_timeout"
    # Back to normal once the service runs again.
    assert _wait_until_answers(gateway, path, auth).status_code == 404


def test_a_service_that_is_down_gives_502_and_comes_back(system, gateway, signer):
    auth = bearer(signer.token())
    path = "/api/v1/claims/no-such-thing"
    pid = _pid(system, "claims")
    os.kill(pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "claims did not stop"
        started = time.monotonic()
        response = gateway.get(path, headers=auth)
        assert_problem(response, 502, "upstream_unavailable")
        assert time.monotonic() - started < 5
        # The other services are not affected.
        assert gateway.get(JWKS).status_code == 200
    finally:
        # services.sh start starts what is not running (claims), leaves the rest as it is.
        subprocess.run(
            [str(LOCAL / "services.sh"), "start"], env=system.env, cwd=ROOT, check=True, capture_output=True, timeout=180
        )
    assert _wait_until_answers(gateway, path, auth).status_code == 404
