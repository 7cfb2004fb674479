"""Create an account, get the activation e-mail, activate, log in: through the gateway, on the
real broker, database and SMTP sink."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import Envelope
from shared.contracts.identity import ActivationLinkIssued
from shared.contracts.topics import IDENTITY_MEMBERS
from tests.integration.conftest import PASSWORD, activation_token


def register_and_activate(gateway, mailbox, member) -> None:
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    [message] = mailbox.wait_for(member.email)
    assert gateway.post("/api/v1/identity/activations", json={"token": activation_token(message)}).status_code == 200


def test_a_member_registers_activates_from_the_email_and_logs_in_with_either_number(gateway, mailbox, registry):
    member = registry.take()
    # The form as a member types it: other case, no accents, spaces for hyphens, French date.
    response = gateway.post(
        "/api/v1/identity/registrations",
        json=member.registration(last_name="lefevre n diaye", first_name="ZOE", birth_date=member.birth_date.strftime("%d/%m/%Y")),
    )
    assert response.status_code == 202, response.text

    [message] = mailbox.wait_for(member.email)
    assert message["Subject"] == "Activez votre espace adhérent"
    assert message["Message-ID"]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Bonjour Zoé Lefèvre-N'Diaye" in text
    assert "Lefèvre-N&#39;Diaye" in html  # autoescaped
    token = activation_token(message)
    assert f"{gateway.base_url}/activation?token={token}" in text

    # Not active yet: the right password says so, and no token is given.
    pending = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
    assert pending.status_code == 403
    assert pending.json()["code"] == "account_not_activated"

    activated = gateway.post("/api/v1/identity/activations", json={"token": token})
    assert activated.status_code == 200, activated.text

    for identifier in (member.membership_number, member.contract_number):
        session = gateway.post("/api/v1/identity/sessions", json={"identifier": identifier, "password": PASSWORD})
        assert session.status_code == 200, session.text
        body = session.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] <= 900
        me = gateway.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json() | {"account_id": None, "member_id": None, "activated_at": None} == {
            "account_id": None,
            "member_id": None,
            "activated_at": None,
            "membership_number": member.membership_number,
            "contract_number": member.contract_number,
            "last_name": "Lefèvre-N'Diaye",
            "first_name": "Zoé",
            "email": member.email,
            "paperless": True,
        }


def test_me_needs_a_valid_token(gateway):
    assert gateway.get("/api/v1/identity/me").status_code == 401
    bad = gateway.get("/api/v1/identity/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_wrong_password_and_unknown_identifier_get_the_same_answer(gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    wrong = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": "Nope-2026!x"})
    unknown = gateway.post("/api/v1/identity/sessions", json={"identifier": "000000000", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_an_unknown_member_gets_the_same_answer_and_no_email(gateway, mailbox, registry):
    member = registry.take()
    impostor = member.registration(first_name="Quelqu'un", email="impostor@example.org", email_confirmation="impostor@example.org")
    genuine = gateway.post("/api/v1/identity/registrations", json=member.registration())
    refused = gateway.post("/api/v1/identity/registrations", json=impostor)
    assert refused.status_code == genuine.status_code == 202
    assert refused.json() == genuine.json()
    mailbox.wait_for(member.email)
    time.sleep(1.0)
    assert mailbox.messages_to("impostor@example.org") == []


def test_a_registration_made_while_kafka_is_down_is_emailed_once_it_is_back(system, gateway, mailbox, registry):
    if not system.can_stop_kafka:
        pytest.skip("Kafka was given by the environment: this test cannot stop it")
    member = registry.take()
    system.stop_kafka()
    try:
        response = gateway.post("/api/v1/identity/registrations", json=member.registration())
        assert response.status_code == 202, response.text
        time.sleep(1.0)
        assert mailbox.messages_to(member.email) == []
    finally:
        system.start_kafka()
    mailbox.wait_for(member.email, timeout=90)
    time.sleep(3.0)  # room for a duplicate to show up, were there one
    assert len(mailbox.messages_to(member.email)) == 1


def _deliveries_to(system, address: str) -> list:
    async def go():
        conn = await asyncpg.connect(system.db_url("notifications").replace("+asyncpg", ""))
        try:
            return await conn.fetch(
                "SELECT status, attempts, last_error, next_attempt_at > now() AS later, body_text IS NULL AS cleared"
                " FROM deliveries WHERE recipient = $1", address)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_an_email_sent_while_the_smtp_relay_is_down_is_retried_in_the_delivery_log_and_arrives_once(
    system, gateway, mailbox, registry
):
    member = registry.take()
    system.stop_smtp()
    try:
        assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = _deliveries_to(system, member.email)
            if rows and rows[0]["attempts"] >= 2:
                break
            time.sleep(0.5)
        # Each failed try is in the log: counted, its error's type, due again later (backoff), the
        # message kept for the next try.
        [row] = rows
        assert row["status"] == "pending" and row["attempts"] >= 2, dict(row)
        assert row["last_error"] == "ConnectionRefusedError" and row["later"] and not row["cleared"], dict(row)
    finally:
        system.start_smtp()
    mailbox.wait_for(member.email, timeout=90)
    time.sleep(3.0)  # room for a duplicate to show up, were there one
    assert len(mailbox.messages_to(member.email)) == 1
    [row] = _deliveries_to(system, member.email)
    assert row["status"] == "sent" and row["last_error"] is None and row["cleared"], dict(row)
    assert row["attempts"] >= 3


def test_each_email_sent_is_told_once_as_email_sent_under_its_correlation_id(system, gateway, mailbox, registry):
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    mailbox.wait_for(member.email)

    async def events():
        conn = await asyncpg.connect(system.db_url("notifications").replace("+asyncpg", ""))
        try:
            return await conn.fetch(
                "SELECT d.correlation_id, o.headers::text AS headers, o.published_at FROM deliveries d"
                " JOIN outbox o ON o.envelope->'payload'->>'delivery_id' = d.id::text"
                " WHERE d.recipient = $1 AND o.event_type = 'notifications.EmailSent'", member.email)
        finally:
            await conn.close()

    deadline = time.monotonic() + 30
    while not (rows := asyncio.run(events())) or rows[0]["published_at"] is None:
        assert time.monotonic() < deadline, "EmailSent not published"
        time.sleep(0.5)
    [row] = rows
    headers = json.loads(row["headers"])
    assert row["correlation_id"] and headers["x-correlation-id"] == row["correlation_id"]
    assert headers["traceparent"]  # the SMTP send's span is its parent


def test_the_same_registration_event_delivered_twice_sends_one_email(system, mailbox):
    email = f"twice.{uuid.uuid4().hex[:12]}@example.org"
    event = ActivationLinkIssued(
        member_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        email=email,
        first_name="Jeanne",
        last_name="Martin",
        token="t" * 43,
        expires_at=datetime.now(UTC) + timedelta(hours=24),
    )
    envelope = Envelope.wrap(event, producer="identity", correlation_id="test-duplicate-delivery")

    async def publish_twice() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for _ in range(2):
                await producer.send_and_wait(
                    IDENTITY_MEMBERS,
                    envelope.model_dump_json().encode(),
                    key=str(event.member_id).encode(),
                    headers=[("event_type", event.event_type.encode())],
                )
        finally:
            await producer.stop()

    asyncio.run(publish_twice())
    mailbox.wait_for(email)
    time.sleep(2.0)
    assert len(mailbox.messages_to(email)) == 1


FORM_RULES = [
    ({"membership_number": None}, "membership_number", "required"),
    ({"last_name": ""}, "last_name", "too_short"),
    ({"first_name": None}, "first_name", "required"),
    ({"birth_date": "31/02/1980"}, "birth_date", "invalid_date"),
    ({"birth_date": "hier"}, "birth_date", "invalid_date"),
    ({"email": "pas-une-adresse"}, "email", "invalid_email"),
    ({"email_confirmation": "autre@example.org"}, "email_confirmation", "email_mismatch"),
    ({"password": "Court1!", "password_confirmation": "Court1!"}, "password", "password_too_short"),
    ({"password": "sansmajuscule1!", "password_confirmation": "sansmajuscule1!"}, "password", "password_no_uppercase"),
    ({"password": "SANSMINUSCULE1!", "password_confirmation": "SANSMINUSCULE1!"}, "password", "password_no_lowercase"),
    ({"password": "SansChiffre!!", "password_confirmation": "SansChiffre!!"}, "password", "password_no_digit"),
    ({"password": "SansSpecial123", "password_confirmation": "SansSpecial123"}, "password", "password_no_special"),
    ({"password_confirmation": "Autre-2026!ok"}, "password_confirmation", "password_mismatch"),
    ({"terms_accepted": False}, "terms_accepted", "terms_not_accepted"),
    ({"terms_accepted": None}, "terms_accepted", "required"),
]


@pytest.mark.parametrize(("change", "field", "code"), FORM_RULES, ids=[f"{r[1]}-{r[2]}" for r in FORM_RULES])
def test_each_broken_form_rule_is_a_422_naming_the_field(gateway, mailbox, registry, change, field, code):
    member = registry.take()
    form = member.registration()
    for key, value in change.items():
        if value is None:
            form.pop(key)
        else:
            form[key] = value
    response = gateway.post("/api/v1/identity/registrations", json=form)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in problem["errors"]]
    assert all(e["message"] for e in problem["errors"])
    time.sleep(0.3)
    assert mailbox.messages_to(member.email) == []  # nothing half-done


def test_a_malformed_body_is_a_problem_not_a_500(gateway):
    response = gateway.post(
        "/api/v1/identity/registrations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


def test_an_activation_link_works_once(gateway, mailbox, registry):
    member = registry.take()
    gateway.post("/api/v1/identity/registrations", json=member.registration())
    token = activation_token(mailbox.wait_for(member.email)[0])
    assert gateway.post("/api/v1/identity/activations", json={"token": token}).status_code == 200
    again = gateway.post("/api/v1/identity/activations", json={"token": token})
    assert again.status_code == 409
    assert again.json()["code"] == "activation_token_used"
    unknown = gateway.post("/api/v1/identity/activations", json={"token": "x" * 43})
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "activation_token_unknown"


def test_registering_again_before_activating_replaces_the_first_link(gateway, mailbox, registry):
    member = registry.take()
    gateway.post("/api/v1/identity/registrations", json=member.registration())
    first = activation_token(mailbox.wait_for(member.email)[0])
    gateway.post("/api/v1/identity/registrations", json=member.registration())
    messages = mailbox.wait_for(member.email, count=2)
    second = next(t for t in map(activation_token, messages) if t != first)
    revoked = gateway.post("/api/v1/identity/activations", json={"token": first})
    assert revoked.status_code == 410
    assert revoked.json()["code"] == "activation_token_revoked"
    assert gateway.post("/api/v1/identity/activations", json={"token": second}).status_code == 200


def test_documents_and_claims_learn_of_each_new_account(system, gateway, mailbox, registry):
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    mailbox.wait_for(member.email)

    async def fetch(service: str, query: str, *args):
        conn = await asyncpg.connect(system.db_url(service).replace("+asyncpg", ""))
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    [account] = asyncio.run(
        fetch("identity", "SELECT a.id, a.member_id FROM accounts a JOIN members m ON m.id = a.member_id"
                          " WHERE m.membership_number = $1", member.membership_number)
    )
    for service in ("documents", "claims"):
        deadline = time.monotonic() + 30
        while not (rows := asyncio.run(fetch(service, "SELECT * FROM members WHERE member_id = $1", account["member_id"]))):
            assert time.monotonic() < deadline, f"{service} did not record the new account"
            time.sleep(0.2)
        assert rows[0]["account_id"] == account["id"] and rows[0]["paperless"] is True
