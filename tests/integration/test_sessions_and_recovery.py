"""Log-in and sessions (refresh rotation, reuse detection, log-out), brute-force throttling,
terms of use, password reset and change: through the gateway, on the real broker, database
and SMTP sink. Time is moved forward in identity's database, never slept through (except for
the one-second log-in delay)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from email.message import EmailMessage

import asyncpg
import jwt
import pytest
from argon2 import PasswordHasher, Type

from tests.integration.conftest import PASSWORD
from tests.integration.test_account_creation import register_and_activate

NEW_PASSWORD = "Nouveau-2027!mdp"
RESET_SUBJECT = "Réinitialisez votre mot de passe"
CHANGED_SUBJECT = "Votre mot de passe a été modifié"
RESET_MARKER = "/mot-de-passe/reinitialisation?token="

# Every secret these tests see, checked at the end against the services' logs and spans.
SEEN_SECRETS: set[str] = set()


# -- helpers ------------------------------------------------------------------------------------


def log_in(gateway, identifier: str, password: str = PASSWORD):
    return gateway.post("/api/v1/identity/sessions", json={"identifier": identifier, "password": password})


def open_session(gateway, identifier: str, password: str = PASSWORD) -> dict:
    response = log_in(gateway, identifier, password)
    assert response.status_code == 200, response.text
    body = response.json()
    SEEN_SECRETS.update({body["refresh_token"], body["access_token"]})
    return body


def refresh(gateway, refresh_token: str):
    response = gateway.post("/api/v1/identity/sessions/refresh", json={"refresh_token": refresh_token})
    if response.status_code == 200:
        SEEN_SECRETS.update({response.json()["refresh_token"], response.json()["access_token"]})
    return response


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def run_sql(system, sql: str, *args, method: str = "execute"):
    """`method`: the asyncpg Connection method (execute answers the status, fetchval a value)."""

    async def go():
        conn = await asyncpg.connect(system.db_url("identity").replace("+asyncpg", ""))
        try:
            return await getattr(conn, method)(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def messages_with_subject(mailbox, address: str, subject: str) -> list[EmailMessage]:
    return [m for m in mailbox.messages_to(address) if m["Subject"] == subject]


def wait_for_subject(mailbox, address: str, subject: str, count: int = 1, timeout: float = 60) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = messages_with_subject(mailbox, address, subject)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} e-mail(s) {subject!r} to {address} expected, got {len(messages_with_subject(mailbox, address, subject))}")


def reset_token(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    start = body.index(RESET_MARKER) + len(RESET_MARKER)
    token = body[start:].split()[0]
    SEEN_SECRETS.add(token)
    return token


def ask_reset(gateway, identifier: str):
    response = gateway.post("/api/v1/identity/password-resets", json={"identifier": identifier})
    assert response.status_code == 202, response.text
    return response


def confirm_reset(gateway, token: str, password: str = NEW_PASSWORD, confirmation: str | None = None):
    return gateway.post(
        "/api/v1/identity/password-resets/confirm",
        json={"token": token, "password": password, "password_confirmation": password if confirmation is None else confirmation},
    )


def sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["title"] and body.get("detail")
    return body


@pytest.fixture
def member(gateway, mailbox, registry):
    """A member with an active account, password PASSWORD."""
    taken = registry.take()
    register_and_activate(gateway, mailbox, taken)
    return taken


# -- sessions -----------------------------------------------------------------------------------


def test_log_in_answers_a_short_access_token_naming_its_session_and_a_refresh_token(system, gateway, member):
    body = open_session(gateway, member.membership_number)
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sid"] and claims["exp"] - claims["iat"] <= 900
    assert len(body["refresh_token"]) >= 43  # 256 random bits
    assert 29 * 86400 < body["refresh_expires_in"] <= 30 * 86400
    assert body["terms_acceptance_required"] is False and body["terms_version"]
    assert gateway.get("/api/v1/identity/me", headers=bearer(body)).status_code == 200

    # A hash made with older (weaker) parameters is replaced at the next log-in.
    stored = "SELECT a.password_hash FROM accounts a JOIN members m ON m.id = a.member_id WHERE m.membership_number = $1"
    current = run_sql(system, stored, member.membership_number, method="fetchval")
    older = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID).hash(PASSWORD)
    run_sql(
        system,
        "UPDATE accounts SET password_hash = $2 FROM members"
        " WHERE accounts.member_id = members.id AND members.membership_number = $1",
        member.membership_number,
        older,
    )
    open_session(gateway, member.membership_number)
    rehashed = run_sql(system, stored, member.membership_number, method="fetchval")
    assert rehashed != older and rehashed.rsplit("$", 2)[0] == current.rsplit("$", 2)[0]  # same parameters
    open_session(gateway, member.membership_number)


def test_a_refresh_rotates_the_token_and_a_replayed_one_ends_the_whole_session(gateway, member):
    first = open_session(gateway, member.membership_number)
    rotated = refresh(gateway, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert jwt.decode(second["access_token"], options={"verify_signature": False})["sid"] == (
        jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    )
    assert gateway.get("/api/v1/identity/me", headers=bearer(second)).status_code == 200
    third = refresh(gateway, second["refresh_token"]).json()

    # The first token is replayed (stolen, say): the family is revoked...
    problem(refresh(gateway, first["refresh_token"]), 401, "refresh_token_reused")
    # ...so the newest token, held by the member, stops working too.
    problem(refresh(gateway, third["refresh_token"]), 401, "session_revoked")
    problem(refresh(gateway, "x" * 43), 401, "refresh_token_invalid")


def test_a_family_past_its_absolute_lifetime_cannot_be_refreshed(system, gateway, member):
    body = open_session(gateway, member.membership_number)
    sid = jwt.decode(body["access_token"], options={"verify_signature": False})["sid"]
    run_sql(system, "UPDATE session_families SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", sid)
    problem(refresh(gateway, body["refresh_token"]), 401, "refresh_token_expired")


def test_log_out_ends_this_session_and_log_out_everywhere_ends_them_all(gateway, member):
    phone = open_session(gateway, member.membership_number)
    laptop = open_session(gateway, member.contract_number)
    tablet = open_session(gateway, member.membership_number)

    assert gateway.delete("/api/v1/identity/sessions/current", headers=bearer(phone)).status_code == 204
    problem(refresh(gateway, phone["refresh_token"]), 401, "session_revoked")
    laptop = refresh(gateway, laptop["refresh_token"]).json()  # the others go on

    assert gateway.delete("/api/v1/identity/sessions", headers=bearer(laptop)).status_code == 204
    problem(refresh(gateway, laptop["refresh_token"]), 401, "session_revoked")
    problem(refresh(gateway, tablet["refresh_token"]), 401, "session_revoked")
    assert gateway.delete("/api/v1/identity/sessions/current").status_code == 401


# -- brute force --------------------------------------------------------------------------------


def _fail_until_throttled(gateway, identifier: str) -> tuple[list[int], object]:
    statuses = []
    for _ in range(8):
        response = log_in(gateway, identifier, "Mauvais-2026!mdp")
        statuses.append(response.status_code)
        if response.status_code == 429:
            return statuses, response
    raise AssertionError(f"never throttled: {statuses}")


def test_repeated_failures_are_throttled_alike_for_known_and_unknown_identifiers(gateway, member):
    unknown = f"8{member.membership_number[1:]}"  # in nobody's registry
    for identifier in (member.membership_number, unknown):
        statuses, throttled = _fail_until_throttled(gateway, identifier)
        assert statuses[:5] == [401] * 5, statuses  # five free failures, then a delay
        body = problem(throttled, 429, "too_many_attempts")
        assert 1 <= int(throttled.headers["Retry-After"]) <= 4
        assert body["retry_after"] == int(throttled.headers["Retry-After"])
        assert member.membership_number not in throttled.text

    # While throttled, even the right password waits (and is not checked).
    throttled = log_in(gateway, member.membership_number)
    if throttled.status_code == 429:
        time.sleep(int(throttled.headers["Retry-After"]))
    else:
        assert throttled.status_code == 200
    # Once the delay is over, the right password works and resets the count.
    deadline = time.monotonic() + 10
    while (response := log_in(gateway, member.membership_number)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(int(response.headers["Retry-After"]))
    assert response.status_code == 200, response.text
    assert log_in(gateway, member.membership_number, "Mauvais-2026!mdp").status_code == 401


def test_a_wrong_password_and_an_unknown_identifier_get_the_same_answer(gateway, member):
    wrong = log_in(gateway, member.contract_number, "Mauvais-2026!mdp")
    unknown = log_in(gateway, f"C7{member.membership_number[2:]}")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


# -- terms of use -------------------------------------------------------------------------------


def test_a_member_who_accepted_older_terms_logs_in_and_is_asked_to_accept_the_current_ones(system, gateway, member):
    current = open_session(gateway, member.membership_number)["terms_version"]
    run_sql(
        system,
        "UPDATE accounts SET terms_version = '2020-01' FROM members"
        " WHERE accounts.member_id = members.id AND members.membership_number = $1",
        member.membership_number,
    )
    body = open_session(gateway, member.membership_number)
    assert body["terms_acceptance_required"] is True and body["terms_version"] == current
    assert refresh(gateway, body["refresh_token"]).json()["terms_acceptance_required"] is True

    old = gateway.post("/api/v1/identity/me/terms-acceptances", json={"version": "2020-01"}, headers=bearer(body))
    errors = problem(old, 422, "validation_failed")["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("version", "terms_version_not_current")]

    accepted = gateway.post("/api/v1/identity/me/terms-acceptances", json={"version": current}, headers=bearer(body))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["terms_version"] == current
    assert open_session(gateway, member.membership_number)["terms_acceptance_required"] is False
    assert gateway.post("/api/v1/identity/me/terms-acceptances", json={"version": current}).status_code == 401


# -- password reset -----------------------------------------------------------------------------


def test_a_member_resets_a_forgotten_password_from_the_emailed_link(gateway, mailbox, member):
    before = open_session(gateway, member.membership_number)
    ask_reset(gateway, member.contract_number)
    [message] = wait_for_subject(mailbox, member.email, RESET_SUBJECT)
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Bonjour Zoé Lefèvre-N'Diaye" in text
    token = reset_token(message)
    assert f"{gateway.base_url}{RESET_MARKER}{token}" in text

    weak = problem(confirm_reset(gateway, token, "faible"), 422, "validation_failed")
    assert {"password"} == {e["field"] for e in weak["errors"]}
    mismatch = problem(confirm_reset(gateway, token, NEW_PASSWORD, "Autre-2027!mdp"), 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in mismatch["errors"]] == [("password_confirmation", "password_mismatch")]

    done = confirm_reset(gateway, token)
    assert done.status_code == 200, done.text
    SEEN_SECRETS.add(NEW_PASSWORD)

    # Every session is ended; the old password is gone, the new one works.
    problem(refresh(gateway, before["refresh_token"]), 401, "session_revoked")
    problem(log_in(gateway, member.membership_number), 401, "invalid_credentials")
    open_session(gateway, member.membership_number, NEW_PASSWORD)
    # The link worked once.
    problem(confirm_reset(gateway, token, "Encore-2028!mdp"), 409, "password_reset_token_used")
    problem(confirm_reset(gateway, "y" * 43), 400, "password_reset_token_unknown")

    [alert] = wait_for_subject(mailbox, member.email, CHANGED_SUBJECT)
    alert_text = alert.get_body(preferencelist=("plain",)).get_content()
    assert "lien de réinitialisation" in alert_text and "Si ce n'est pas vous" in alert_text
    assert token not in alert_text


def test_an_expired_reset_link_is_refused(system, gateway, mailbox, member):
    ask_reset(gateway, member.membership_number)
    token = reset_token(wait_for_subject(mailbox, member.email, RESET_SUBJECT)[0])
    # Thirty-one minutes later:
    assert run_sql(
        system,
        "UPDATE password_reset_tokens SET created_at = created_at - interval '31 minutes',"
        " expires_at = expires_at - interval '31 minutes' WHERE token_hash = $1",
        sha256(token),
    ) == "UPDATE 1"
    problem(confirm_reset(gateway, token), 410, "password_reset_token_expired")
    open_session(gateway, member.membership_number)  # the password did not change


def test_a_newer_reset_link_replaces_the_older_one_and_requests_are_not_mailed_twice_a_minute(system, gateway, mailbox, member):
    ask_reset(gateway, member.membership_number)
    first = reset_token(wait_for_subject(mailbox, member.email, RESET_SUBJECT)[0])
    ask_reset(gateway, member.membership_number)  # a second click at once: no second e-mail
    time.sleep(1.5)
    assert len(messages_with_subject(mailbox, member.email, RESET_SUBJECT)) == 1

    # Two minutes later, the member asks again:
    run_sql(system, "UPDATE password_reset_tokens SET created_at = created_at - interval '2 minutes' WHERE token_hash = $1", sha256(first))
    ask_reset(gateway, member.membership_number)
    second = next(
        t for t in map(reset_token, wait_for_subject(mailbox, member.email, RESET_SUBJECT, count=2)) if t != first
    )
    problem(confirm_reset(gateway, first), 410, "password_reset_token_revoked")
    assert confirm_reset(gateway, second).status_code == 200


def test_a_reset_request_answers_the_same_for_active_pending_and_unknown_identifiers(gateway, mailbox, registry, member):
    pending = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=pending.registration()).status_code == 202
    mailbox.wait_for(pending.email)  # its activation e-mail

    answers = [ask_reset(gateway, i) for i in (member.membership_number, pending.membership_number, "000000000")]
    assert len({a.text for a in answers}) == 1
    wait_for_subject(mailbox, member.email, RESET_SUBJECT)
    time.sleep(1.5)
    assert messages_with_subject(mailbox, pending.email, RESET_SUBJECT) == []
    malformed = gateway.post("/api/v1/identity/password-resets", json={})
    assert [e["field"] for e in problem(malformed, 422, "validation_failed")["errors"]] == ["identifier"]


def test_a_reset_lifts_the_log_in_delay(gateway, mailbox, member):
    statuses, _ = _fail_until_throttled(gateway, member.membership_number)
    ask_reset(gateway, member.membership_number)
    token = reset_token(wait_for_subject(mailbox, member.email, RESET_SUBJECT)[0])
    assert confirm_reset(gateway, token).status_code == 200
    open_session(gateway, member.membership_number, NEW_PASSWORD)


# -- password change ----------------------------------------------------------------------------


def test_a_logged_in_member_changes_the_password_and_the_other_sessions_end(gateway, mailbox, member):
    here = open_session(gateway, member.membership_number)
    elsewhere = open_session(gateway, member.membership_number)
    url = "/api/v1/identity/me/password"

    def change(current: str, new: str, confirmation: str | None = None):
        return gateway.post(
            url,
            json={"current_password": current, "new_password": new,
                  "new_password_confirmation": new if confirmation is None else confirmation},
            headers=bearer(here),
        )

    wrong = problem(change("Mauvais-2026!mdp", NEW_PASSWORD), 403, "current_password_incorrect")
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("current_password", "current_password_incorrect")]
    weak = problem(change(PASSWORD, "faible"), 422, "validation_failed")
    assert {e["field"] for e in weak["errors"]} == {"new_password"}
    same = problem(change(PASSWORD, PASSWORD), 422, "validation_failed")
    assert ("new_password", "password_unchanged") in [(e["field"], e["code"]) for e in same["errors"]]
    problem(change(PASSWORD, NEW_PASSWORD, "Autre-2027!mdp"), 422, "validation_failed")
    assert gateway.post(url, json={}).status_code == 401

    done = change(PASSWORD, NEW_PASSWORD)
    assert done.status_code == 200, done.text

    assert refresh(gateway, here["refresh_token"]).status_code == 200  # this session stays
    problem(refresh(gateway, elsewhere["refresh_token"]), 401, "session_revoked")
    problem(log_in(gateway, member.membership_number), 401, "invalid_credentials")
    open_session(gateway, member.membership_number, NEW_PASSWORD)
    alert = wait_for_subject(mailbox, member.email, CHANGED_SUBJECT)[0].get_body(preferencelist=("plain",)).get_content()
    assert "déconnecté de vos autres appareils" in alert


def test_wrong_current_passwords_are_throttled(gateway, member):
    session = open_session(gateway, member.membership_number)
    body = {"current_password": "Mauvais-2026!mdp", "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD}
    statuses = []
    for _ in range(8):
        response = gateway.post("/api/v1/identity/me/password", json=body, headers=bearer(session))
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[:5] == [403] * 5 and statuses[-1] == 429, statuses
    assert response.headers["Retry-After"]


def test_a_logged_out_session_cannot_change_the_password(gateway, member):
    session = open_session(gateway, member.membership_number)
    assert gateway.delete("/api/v1/identity/sessions/current", headers=bearer(session)).status_code == 204
    response = gateway.post(
        "/api/v1/identity/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirmation": NEW_PASSWORD},
        headers=bearer(session),
    )
    problem(response, 401, "session_revoked")


# -- hygiene ------------------------------------------------------------------------------------


def test_no_token_or_password_reaches_the_logs_or_the_spans(system):
    assert SEEN_SECRETS, "run with the other tests of this module"
    time.sleep(6)  # spans are exported in batches (every 5 s)
    files = [*system.log_dir.glob("*.log"), *(system.log_dir.parent / "trace").glob("*.jsonl")]
    assert files
    for path in files:
        content = path.read_text(encoding="utf-8", errors="replace")
        for secret in SEEN_SECRETS | {PASSWORD}:
            assert secret not in content, f"a secret is written in {path.name}"
