"""Management-centre agents through the gateway on the real system: created by the command,
password and second factor set from the one-time link, log-in with a TOTP code (once per code),
refresh and log-out; and agent tokens kept apart from member tokens, by the gateway and by the
services themselves."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from identity.domain import totp
from shared.platform.auth import AGENT_AUDIENCE
from tests.integration.conftest import AGENT_PASSWORD, link_token, run_create_agent, totp_now
from tests.integration.test_account_creation import register_and_activate
from tests.integration.test_gateway import assert_problem

PASSWORDS = "/api/v1/identity/agent-passwords"
SESSIONS = "/api/v1/identity/agent-sessions"
BACKOFFICE_ME = "/api/v1/identity/backoffice/me"
ME = "/api/v1/identity/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def set_password(gateway, token: str, password: str = AGENT_PASSWORD, confirmation: str | None = None):
    return gateway.post(
        PASSWORDS, json={"token": token, "password": password, "password_confirmation": confirmation or password}
    )


def test_an_agent_is_created_sets_a_password_from_the_link_and_logs_in_with_a_totp_code(system, gateway):
    email = f"Agent.{uuid.uuid4().hex[:10]}@Mutuelle.example"
    link = run_create_agent(system, email, "Bernard Lemoine")
    assert link.startswith(f"{system.gateway_url}/agent/mot-de-passe?token=")
    token = link_token(link)

    # Members' password policy: the agent's name is refused, like a weak password.
    weak = set_password(gateway, token, "Lemoine-2026!x")
    problem = assert_problem(weak, 422, "validation_failed")
    assert "password_contains_last_name" in {e["code"] for e in problem["errors"]}
    assert_problem(set_password(gateway, token, AGENT_PASSWORD, "Other-2026!ok"), 422, "validation_failed")

    enrolled = set_password(gateway, token)
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.headers["cache-control"] == "no-store"
    body = enrolled.json()
    secret = body["totp_secret"]
    assert body["totp_uri"].startswith("otpauth://totp/Espace%20back-office:")
    assert f"secret={secret}" in body["totp_uri"]
    # The link is single use.
    assert_problem(set_password(gateway, token), 409, "agent_password_token_used")

    # Wrong code, wrong password, unknown e-mail: one and the same 401.
    wrong_code = f"{(int(totp_now(secret)) + 1) % 10**6:06d}"
    for attempt in (
        {"email": email, "password": AGENT_PASSWORD, "totp_code": wrong_code},
        {"email": email, "password": "Not-the-2026!pw", "totp_code": totp_now(secret)},
        {"email": f"nobody.{uuid.uuid4().hex[:6]}@mutuelle.example", "password": AGENT_PASSWORD, "totp_code": "123456"},
    ):
        assert_problem(gateway.post(SESSIONS, json=attempt), 401, "invalid_credentials")

    code, used_at = totp_now(secret), time.time()
    # The e-mail is compared without case.
    session = gateway.post(SESSIONS, json={"email": email.lower(), "password": AGENT_PASSWORD, "totp_code": code})
    assert session.status_code == 200, session.text
    tokens = session.json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == AGENT_AUDIENCE and claims["role"] == "agent" and claims["sub"] == body["agent_id"]
    assert "mid" not in claims
    # The same code does not open a second session.
    assert_problem(
        gateway.post(SESSIONS, json={"email": email, "password": AGENT_PASSWORD, "totp_code": code}), 401, "invalid_credentials"
    )

    me = gateway.get(BACKOFFICE_ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {"agent_id": body["agent_id"], "email": email, "name": "Bernard Lemoine"}

    # Refresh rotates; a spent refresh token presented again ends the session.
    renewed = gateway.post(f"{SESSIONS}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    assert_problem(
        gateway.post(f"{SESSIONS}/refresh", json={"refresh_token": tokens["refresh_token"]}), 401, "refresh_token_reused"
    )
    assert_problem(gateway.get(BACKOFFICE_ME, headers=bearer(renewed.json()["access_token"])), 401, "session_revoked")

    # A new log-in (next code), then log-out: the session is over.
    session = gateway.post(
        SESSIONS, json={"email": email, "password": AGENT_PASSWORD, "totp_code": totp_now(secret, after=used_at)}
    )
    assert session.status_code == 200, session.text
    access = session.json()["access_token"]
    assert gateway.delete("/api/v1/identity/backoffice/sessions/current", headers=bearer(access)).status_code == 204
    assert_problem(gateway.get(BACKOFFICE_ME, headers=bearer(access)), 401, "session_revoked")
    assert_problem(
        gateway.post(f"{SESSIONS}/refresh", json={"refresh_token": session.json()["refresh_token"]}), 401, "session_revoked"
    )


def test_a_second_create_agent_gives_a_new_link_revokes_the_old_one_and_re_enrols(system, gateway, agents):
    agent = agents.create()
    first = run_create_agent(system, agent.email, "Agnès Gestion")
    second = run_create_agent(system, agent.email, "Agnès Gestion-Martin")
    assert_problem(set_password(gateway, link_token(first)), 410, "agent_password_token_revoked")
    enrolled = set_password(gateway, link_token(second), "Autre-Mot-2026!")
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["agent_id"] == agent.id
    new_secret = enrolled.json()["totp_secret"]
    assert new_secret != agent.totp_secret
    # The sessions opened before are over; the old password and the old authenticator no longer work.
    assert_problem(gateway.get(BACKOFFICE_ME, headers=agent.headers), 401, "session_revoked")
    old = {"email": agent.email, "password": AGENT_PASSWORD, "totp_code": totp_now(new_secret)}
    assert_problem(gateway.post(SESSIONS, json=old), 401, "invalid_credentials")
    fresh = {"email": agent.email, "password": "Autre-Mot-2026!", "totp_code": totp.code_at(new_secret, time.time())}
    response = gateway.post(SESSIONS, json=fresh)
    assert response.status_code == 200, response.text


def test_unknown_and_expired_links_are_refused(system, gateway):
    assert_problem(set_password(gateway, "not-a-real-token"), 400, "agent_password_token_unknown")
    link = run_create_agent(system, f"late.{uuid.uuid4().hex[:8]}@mutuelle.example", "Chloé Tardy")
    from tests.integration.test_sessions_and_recovery import run_sql

    run_sql(system, "UPDATE agent_password_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL "
                    "AND agent_id = (SELECT id FROM agents WHERE name = 'Chloé Tardy' ORDER BY created_at DESC LIMIT 1)")
    assert_problem(set_password(gateway, link_token(link)), 410, "agent_password_token_expired")


def test_member_and_agent_tokens_are_kept_apart_by_the_gateway_and_by_the_service(system, gateway, mailbox, registry, agent):
    member = registry.take()
    register_and_activate(gateway, mailbox, member)
    from tests.integration.test_sessions_and_recovery import open_session

    member_token = open_session(gateway, member.membership_number)["access_token"]
    assert gateway.get(ME, headers=bearer(member_token)).status_code == 200
    assert gateway.get(BACKOFFICE_ME, headers=agent.headers).status_code == 200

    # The gateway: a member token on a back-office route, an agent token on a member route.
    assert_problem(gateway.get(BACKOFFICE_ME, headers=bearer(member_token)), 401, "invalid_token")
    assert_problem(gateway.get(ME, headers=agent.headers), 401, "invalid_token")
    assert_problem(gateway.get("/api/v1/claims/backoffice/claims", headers=bearer(member_token)), 401, "invalid_token")

    # The service itself, reached without the gateway, refuses them the same way.
    identity_url = f"http://127.0.0.1:{system.env['IDENTITY_PORT']}"
    with httpx.Client(base_url=identity_url, timeout=10) as direct:
        assert direct.get(BACKOFFICE_ME, headers=agent.headers).status_code == 200
        assert_problem(direct.get(BACKOFFICE_ME, headers=bearer(member_token)), 401, "invalid_token")
        assert_problem(direct.get(ME, headers=agent.headers), 401, "invalid_token")
        assert_problem(
            direct.delete("/api/v1/identity/backoffice/sessions/current", headers=bearer(member_token)), 401, "invalid_token"
        )
        assert_problem(direct.delete("/api/v1/identity/sessions/current", headers=agent.headers), 401, "invalid_token")
