"""Registration done properly (password policy, an account that already exists, resending the
activation link, expired links), then the member's own data: profile, change of e-mail address,
communication preferences. Through the gateway, on the real broker, database and SMTP sink."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from shared.contracts.topics import IDENTITY_MEMBERS
from tests.integration.conftest import PASSWORD, activation_token
from tests.integration.test_account_creation import register_and_activate

ACCOUNT_EXISTS = "Vous avez déjà un espace adhérent"
CONFIRM_NEW_EMAIL = "Confirmez votre nouvelle adresse e-mail"
EMAIL_CHANGE_ALERT = "Demande de changement de l'adresse e-mail de votre espace"
EMAIL_CHANGED = "Votre nouvelle adresse e-mail est enregistrée"


# -- helpers --------------------------------------------------------------------------------------


def log_in(gateway, member) -> dict[str, str]:
    response = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def subjects(mailbox, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mailbox.messages_to(address)]


def wait_for_subject(mailbox, address: str, subject: str, count: int = 1, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in mailbox.messages_to(address) if str(m["Subject"]) == subject]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} e-mail(s) {subject!r} to {address} expected, got {subjects(mailbox, address)}")


def link_token(message, marker: str) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    start = body.index(marker) + len(marker)
    return body[start:].split()[0]


def identity_db(system, query: str, *args) -> str:
    """Runs one statement in identity's database: how the tests move time forward."""

    async def run() -> str:
        conn = await asyncpg.connect(system.db_url("identity").replace("+asyncpg", ""))
        try:
            return await conn.execute(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def expire(system, table: str, token: str) -> None:
    status = identity_db(
        system,
        f"UPDATE {table} SET expires_at = now() - interval '1 minute', created_at = created_at - interval '2 days'"
        " WHERE token_hash = $1",
        hashlib.sha256(token.encode()).digest(),
    )
    assert status == "UPDATE 1"


def identity_events(system, member_id: str, event_type: str, *, expected: int = 1, timeout: float = 30, settle: float = 2):
    """The events of one type for one member on identity.members.v1, read from the start; waits
    for `expected` of them, then `settle` seconds more for any extra one."""

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(
            IDENTITY_MEMBERS, bootstrap_servers=system.kafka_bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        await consumer.start()
        found: list[dict] = []
        loop = asyncio.get_running_loop()
        deadline, settled_at = loop.time() + timeout, None
        try:
            while loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    for record in records:
                        envelope = json.loads(record.value)
                        if envelope["event_type"] == event_type and envelope["payload"].get("member_id") == member_id:
                            found.append(envelope)
                if len(found) >= expected:
                    settled_at = settled_at or loop.time() + settle
                    if loop.time() >= settled_at:
                        break
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


# -- password policy ------------------------------------------------------------------------------


def _personal_passwords(member) -> list[tuple[str, str]]:
    return [
        ("P@ssw0rd", "password_too_common"),
        ("Azerty2026!", "password_too_common"),
        (f"Clef-{member.membership_number}!", "password_contains_membership_number"),
        ("Lefevre#2026x", "password_contains_last_name"),
        ("Mon-DIAYE-2026!", "password_contains_last_name"),
        ("Zoe-Secret-99!", "password_contains_first_name"),
        (f"Clef!{member.birth_date.strftime('%d%m%Y')}x", "password_contains_birth_date"),
        (f"Clef!{member.birth_date.isoformat()}x", "password_contains_birth_date"),
    ]


def test_a_common_password_or_one_holding_personal_data_is_a_422_with_its_code(gateway, mailbox, registry):
    member = registry.take()
    for password, code in _personal_passwords(member):
        response = gateway.post(
            "/api/v1/identity/registrations", json=member.registration(password=password, password_confirmation=password)
        )
        assert response.status_code == 422, (password, response.text)
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert {"field": "password", "code": code} in [{"field": e["field"], "code": e["code"]} for e in problem["errors"]]
        assert all(e["message"] for e in problem["errors"])
    time.sleep(0.5)
    assert mailbox.messages_to(member.email) == []


# -- an account that already exists -----------------------------------------------------------------


def test_registering_again_with_an_active_account_emails_the_owner_and_answers_the_same(gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    typed = f"quelquun.{member.membership_number}@example.org"
    other_password = "Tout-Autre-2026!x"
    again = gateway.post(
        "/api/v1/identity/registrations",
        json=member.registration(email=typed, email_confirmation=typed, password=other_password,
                                 password_confirmation=other_password),
    )
    unknown = gateway.post(
        "/api/v1/identity/registrations", json=member.registration(membership_number="000000001")
    )
    assert again.status_code == unknown.status_code == 202
    assert again.json() == unknown.json()

    [notice] = wait_for_subject(mailbox, member.email, ACCOUNT_EXISTS)
    text = notice.get_body(preferencelist=("plain",)).get_content()
    assert f"{gateway.base_url}/mot-de-passe/oubli" in text
    assert "Bonjour Zoé Lefèvre-N'Diaye" in text
    time.sleep(1.0)
    assert mailbox.messages_to(typed) == []  # the typed address learns nothing
    assert len(mailbox.messages_to(member.email)) == 2  # the activation, then the notice
    # Nothing changed: the first password still opens the space, the second one does not.
    log_in(gateway, member)
    refused = gateway.post(
        "/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": other_password}
    )
    assert refused.status_code == 401


# -- resend ----------------------------------------------------------------------------------------


def test_a_resent_link_replaces_the_old_one(gateway, mailbox, registry):
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    first = activation_token(mailbox.wait_for(member.email)[0])
    resent = gateway.post(
        "/api/v1/identity/activations/resend",
        json={"membership_number": f" {member.membership_number} ", "email": member.email.upper()},
    )
    assert resent.status_code == 202, resent.text
    second = next(t for t in map(activation_token, mailbox.wait_for(member.email, count=2)) if t != first)

    old = gateway.post("/api/v1/identity/activations", json={"token": first})
    assert old.status_code == 410
    assert old.json()["code"] == "activation_token_revoked"
    assert gateway.post("/api/v1/identity/activations", json={"token": second}).status_code == 200


def test_resend_answers_the_same_whatever_exists_and_sends_only_to_a_pending_match(gateway, mailbox, registry):
    pending, active = registry.take(), registry.take()
    gateway.post("/api/v1/identity/registrations", json=pending.registration())
    mailbox.wait_for(pending.email)
    register_and_activate(gateway, mailbox, active)
    answers = [
        gateway.post("/api/v1/identity/activations/resend", json=body)
        for body in (
            {"membership_number": pending.membership_number, "email": pending.email},  # sends
            {"membership_number": pending.membership_number, "email": "pas.moi@example.org"},  # wrong e-mail
            {"membership_number": "000000002", "email": pending.email},  # unknown number
            {"membership_number": active.membership_number, "email": active.email},  # already active
        )
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    mailbox.wait_for(pending.email, count=2)
    time.sleep(1.0)
    assert len(mailbox.messages_to(pending.email)) == 2
    assert mailbox.messages_to("pas.moi@example.org") == []
    assert len(mailbox.messages_to(active.email)) == 1  # its activation only

    malformed = gateway.post("/api/v1/identity/activations/resend", json={"membership_number": "1", "email": "pas-une-adresse"})
    assert malformed.status_code == 422
    assert {"field": "email", "code": "invalid_email"} in [
        {"field": e["field"], "code": e["code"]} for e in malformed.json()["errors"]
    ]


def test_resends_stop_silently_after_five_links_an_hour(gateway, mailbox, registry):
    member = registry.take()
    gateway.post("/api/v1/identity/registrations", json=member.registration())  # link 1
    mailbox.wait_for(member.email)
    body = {"membership_number": member.membership_number, "email": member.email}
    for sent in range(2, 6):
        assert gateway.post("/api/v1/identity/activations/resend", json=body).status_code == 202
        mailbox.wait_for(member.email, count=sent)
    capped = gateway.post("/api/v1/identity/activations/resend", json=body)
    assert capped.status_code == 202
    time.sleep(2.0)
    assert len(mailbox.messages_to(member.email)) == 5
    # The latest link sent still works, the four before it were replaced.
    statuses = [
        gateway.post("/api/v1/identity/activations", json={"token": activation_token(m)}).status_code
        for m in mailbox.messages_to(member.email)
    ]
    assert statuses.count(200) == 1 and set(statuses) <= {200, 409, 410}


def test_an_expired_link_is_refused_with_the_resend_hint_and_a_resent_one_works(system, gateway, mailbox, registry):
    member = registry.take()
    gateway.post("/api/v1/identity/registrations", json=member.registration())
    token = activation_token(mailbox.wait_for(member.email)[0])
    expire(system, "activation_tokens", token)

    expired = gateway.post("/api/v1/identity/activations", json={"token": token})
    assert expired.status_code == 410
    assert expired.headers["content-type"].startswith("application/problem+json")
    problem = expired.json()
    assert problem["code"] == "activation_token_expired"
    assert problem["resend_possible"] is True
    assert problem["detail"]

    gateway.post(
        "/api/v1/identity/activations/resend", json={"membership_number": member.membership_number, "email": member.email}
    )
    fresh = next(t for t in map(activation_token, mailbox.wait_for(member.email, count=2)) if t != token)
    assert gateway.post("/api/v1/identity/activations", json={"token": fresh}).status_code == 200
    stale = gateway.post("/api/v1/identity/activations", json={"token": token})
    assert stale.status_code == 409  # the account is active now


# -- profile -----------------------------------------------------------------------------------------


def test_the_profile_is_read_updated_and_validated(system, gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    auth = log_in(gateway, member)
    member_id = gateway.get("/api/v1/identity/me", headers=auth).json()["member_id"]

    assert gateway.get("/api/v1/identity/me/profile").status_code == 401
    empty = gateway.get("/api/v1/identity/me/profile", headers=auth)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"postal_address": None, "phone": None, "updated_at": None}

    address = {"line1": " 12  rue des Lilas ", "line2": "Bâtiment B", "postal_code": "69003", "city": "Lyon"}
    updated = gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"postal_address": address, "phone": "06 12 34 56 78"})
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["postal_address"] == {
        "line1": "12 rue des Lilas", "line2": "Bâtiment B", "postal_code": "69003", "city": "Lyon", "country": "FR",
    }
    assert body["phone"] == "+33612345678"
    assert body["updated_at"]
    assert gateway.get("/api/v1/identity/me/profile", headers=auth).json() == body

    # Only what is sent changes; null removes.
    phone_only = gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"phone": "+33 (0)7 00 00 00 01"})
    assert phone_only.json()["phone"] == "+33700000001"
    assert phone_only.json()["postal_address"] == body["postal_address"]
    no_phone = gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"phone": None})
    assert no_phone.json()["phone"] is None and no_phone.json()["postal_address"] == body["postal_address"]

    invalid = gateway.patch(
        "/api/v1/identity/me/profile",
        headers=auth,
        json={"postal_address": {**address, "postal_code": "6900", "line1": "x" * 39}, "phone": "12 34"},
    )
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith("application/problem+json")
    found = {(e["field"], e["code"]) for e in invalid.json()["errors"]}
    assert found == {
        ("postal_address.postal_code", "invalid_postal_code"),
        ("postal_address.line1", "too_long"),
        ("phone", "invalid_phone"),
    }
    assert all(e["message"] for e in invalid.json()["errors"])
    missing = gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"postal_address": {"line1": "1 rue X"}})
    assert missing.status_code == 422
    assert {("postal_address.postal_code", "required"), ("postal_address.city", "required")} <= {
        (e["field"], e["code"]) for e in missing.json()["errors"]
    }
    assert gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"telephone": "x"}).status_code == 422
    # Nothing invalid was kept.
    assert gateway.get("/api/v1/identity/me/profile", headers=auth).json()["postal_address"] == body["postal_address"]

    removed = gateway.patch("/api/v1/identity/me/profile", headers=auth, json={"postal_address": None})
    assert removed.json()["postal_address"] is None

    events = identity_events(system, member_id, "identity.ProfileUpdated", expected=4)
    assert [e["payload"]["changed"] for e in events] == [["postal_address", "phone"], ["phone"], ["phone"], ["postal_address"]]
    assert events[0]["payload"]["postal_address"]["postal_code"] == "69003"
    assert events[-1]["payload"]["postal_address"] is None
    assert all("phone" not in e["payload"] and "+33" not in json.dumps(e) for e in events)


# -- e-mail change ------------------------------------------------------------------------------------


def _change_email(gateway, auth, new_email: str, password: str = PASSWORD, confirmation: str | None = None):
    return gateway.post(
        "/api/v1/identity/me/email-changes",
        headers=auth,
        json={"new_email": new_email, "new_email_confirmation": confirmation or new_email, "password": password},
    )


def test_a_new_email_address_counts_only_once_confirmed_from_it(gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    auth = log_in(gateway, member)
    new_email = f"nouvelle.{member.membership_number}@example.net"

    wrong = _change_email(gateway, auth, new_email, password="Pas-le-bon-2026!")
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "password_incorrect"
    mismatch = _change_email(gateway, auth, new_email, confirmation=f"autre.{member.membership_number}@example.net")
    assert mismatch.status_code == 422
    assert {"field": "new_email_confirmation", "code": "email_mismatch"} in [
        {"field": e["field"], "code": e["code"]} for e in mismatch.json()["errors"]
    ]
    same = _change_email(gateway, auth, member.email.upper())
    assert same.status_code == 422 and same.json()["errors"][0]["code"] == "email_unchanged"
    assert _change_email(gateway, auth, "pas-une-adresse").status_code == 422

    accepted = _change_email(gateway, auth, new_email)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "pending_confirmation"

    [confirmation] = wait_for_subject(mailbox, new_email, CONFIRM_NEW_EMAIL)
    [alert] = wait_for_subject(mailbox, member.email, EMAIL_CHANGE_ALERT)
    alert_text = alert.get_body(preferencelist=("plain",)).get_content()
    assert f"n***{member.membership_number[-1]}@example.net" in alert_text and "token" not in alert_text
    token = link_token(confirmation, "/email/confirmation?token=")
    assert f"{gateway.base_url}/email/confirmation?token={token}" in confirmation.get_body(preferencelist=("plain",)).get_content()

    # Not confirmed yet: the account keeps its address.
    assert gateway.get("/api/v1/identity/me", headers=auth).json()["email"] == member.email

    confirmed = gateway.post("/api/v1/identity/email-changes/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"status": "confirmed", "email": new_email}
    assert gateway.get("/api/v1/identity/me", headers=auth).json()["email"] == new_email
    wait_for_subject(mailbox, new_email, EMAIL_CHANGED)

    again = gateway.post("/api/v1/identity/email-changes/confirm", json={"token": token})
    assert again.status_code == 409 and again.json()["code"] == "email_change_token_used"
    unknown = gateway.post("/api/v1/identity/email-changes/confirm", json={"token": "x" * 43})
    assert unknown.status_code == 400 and unknown.json()["code"] == "email_change_token_unknown"

    # The new address now receives what the old one did: the account-exists notice, for instance.
    gateway.post("/api/v1/identity/registrations", json=member.registration())
    wait_for_subject(mailbox, new_email, ACCOUNT_EXISTS)


def test_an_email_change_link_expires_and_a_newer_request_replaces_it(system, gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    auth = log_in(gateway, member)
    first_address = f"premiere.{member.membership_number}@example.net"
    second_address = f"seconde.{member.membership_number}@example.net"

    assert _change_email(gateway, auth, first_address).status_code == 202
    first = link_token(wait_for_subject(mailbox, first_address, CONFIRM_NEW_EMAIL)[0], "/email/confirmation?token=")
    assert _change_email(gateway, auth, second_address).status_code == 202
    second = link_token(wait_for_subject(mailbox, second_address, CONFIRM_NEW_EMAIL)[0], "/email/confirmation?token=")
    wait_for_subject(mailbox, member.email, EMAIL_CHANGE_ALERT, count=2)

    replaced = gateway.post("/api/v1/identity/email-changes/confirm", json={"token": first})
    assert replaced.status_code == 410 and replaced.json()["code"] == "email_change_token_revoked"
    expire(system, "email_change_tokens", second)
    expired = gateway.post("/api/v1/identity/email-changes/confirm", json={"token": second})
    assert expired.status_code == 410 and expired.json()["code"] == "email_change_token_expired"
    assert gateway.get("/api/v1/identity/me", headers=auth).json()["email"] == member.email


def test_repeated_wrong_passwords_at_the_email_change_are_throttled(gateway, mailbox, registry):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    auth = log_in(gateway, member)
    new_email = f"devine.{member.membership_number}@example.net"
    for _ in range(5):
        assert _change_email(gateway, auth, new_email, password="Devine-2026!x").status_code == 403
    blocked = _change_email(gateway, auth, new_email)  # even the right password, for a while
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"
    assert int(blocked.headers["retry-after"]) > 0
    time.sleep(0.5)
    assert mailbox.messages_to(new_email) == []


# -- communication preferences ------------------------------------------------------------------------


def test_preferences_start_from_the_registration_choice_and_each_change_is_published(system, gateway, mailbox, registry):
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration(paperless=False)).status_code == 202
    token = activation_token(mailbox.wait_for(member.email)[0])
    assert gateway.post("/api/v1/identity/activations", json={"token": token}).status_code == 200
    auth = log_in(gateway, member)
    member_id = gateway.get("/api/v1/identity/me", headers=auth).json()["member_id"]

    assert gateway.get("/api/v1/identity/me/preferences").status_code == 401
    assert gateway.get("/api/v1/identity/me/preferences", headers=auth).json() == {
        "paperless": False, "reimbursement_alerts": True,
    }
    wanted = {"paperless": True, "reimbursement_alerts": False}
    changed = gateway.put("/api/v1/identity/me/preferences", headers=auth, json=wanted)
    assert changed.status_code == 200, changed.text
    assert changed.json() == wanted
    assert gateway.put("/api/v1/identity/me/preferences", headers=auth, json=wanted).json() == wanted  # no change
    assert gateway.get("/api/v1/identity/me/preferences", headers=auth).json() == wanted
    assert gateway.get("/api/v1/identity/me", headers=auth).json()["paperless"] is True

    invalid = gateway.put("/api/v1/identity/me/preferences", headers=auth, json={"paperless": "oui"})
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"paperless", "reimbursement_alerts"}

    [event] = identity_events(system, member_id, "identity.CommunicationPreferencesChanged")
    assert event["payload"]["paperless"] is True and event["payload"]["reimbursement_alerts"] is False
    assert event["payload"]["changed_at"]


@pytest.mark.parametrize("path", ["/api/v1/identity/me/profile", "/api/v1/identity/me/preferences"])
def test_a_bad_token_is_a_401_problem(gateway, path):
    response = gateway.get(path, headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
