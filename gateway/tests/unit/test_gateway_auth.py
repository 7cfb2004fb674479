"""Authentication at the gateway: a small table of public routes; everything else under /api/v1
needs a valid access token (EdDSA, identity's JWKS, audience, issuer, expiry)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PROBLEM = "application/problem+json"


async def _assert_invalid_token(response) -> None:
    assert response.status == 401
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["WWW-Authenticate"] == "Bearer"
    problem = await response.json()
    assert problem["code"] == "invalid_token"
    assert problem["status"] == 401
    assert problem["title"] == "Authentification requise"


async def test_a_protected_route_without_token_is_refused_before_the_service(gateway, client, services):
    before = len(services.claims.seen)
    async with client.get(f"{gateway}/api/v1/claims/reimbursements") as response:
        await _assert_invalid_token(response)
    assert len(services.claims.seen) == before


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer not.a.jwt", "bearer abc.def.ghi"],
)
async def test_a_malformed_authorization_is_refused(gateway, client, authorization):
    async with client.get(
        f"{gateway}/api/v1/claims/reimbursements", headers={"Authorization": authorization}
    ) as response:
        await _assert_invalid_token(response)


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return ".".join([header, payload, signature[:5] + flipped + signature[6:]])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda keys: keys.token(ttl=-60), id="expired"),
        pytest.param(lambda keys: _tampered(keys.token()), id="tampered-signature"),
        pytest.param(lambda keys: keys.token(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda keys: keys.token(iss="evil"), id="wrong-issuer"),
        pytest.param(lambda keys: keys.token(key=Ed25519PrivateKey.generate()), id="other-key-same-kid"),
        pytest.param(lambda keys: keys.token(key=Ed25519PrivateKey.generate(), kid="unknown"), id="unknown-kid"),
        pytest.param(
            lambda keys: jwt.encode(
                {"sub": "x", "aud": "espace", "iss": "espace-identity", "exp": int(time.time()) + 60},
                "secret-secret-secret-secret-32b!",
                algorithm="HS256",
                headers={"kid": keys.kid},
            ),
            id="hs256-not-allowed",
        ),
        pytest.param(
            lambda keys: jwt.encode({"sub": "x"}, None, algorithm="none", headers={"kid": keys.kid}), id="alg-none"
        ),
    ],
)
async def test_a_bad_token_is_refused(gateway, client, services, keys, make):
    before = len(services.claims.seen)
    async with client.get(
        f"{gateway}/api/v1/claims/reimbursements", headers={"Authorization": f"Bearer {make(keys)}"}
    ) as response:
        await _assert_invalid_token(response)
    assert len(services.claims.seen) == before


async def test_a_valid_token_passes_and_is_forwarded(gateway, client, services, keys):
    token = keys.token()
    async with client.get(
        f"{gateway}/api/v1/claims/reimbursements", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
    assert services.claims.last.headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/identity/registrations",
        "/api/v1/identity/activations",
        "/api/v1/identity/activations/resend",
        "/api/v1/identity/sessions",
        "/api/v1/identity/sessions/refresh",
        "/api/v1/identity/password-resets",
        "/api/v1/identity/password-resets/confirm",
        "/api/v1/identity/email-changes/confirm",
    ],
)
async def test_public_routes_pass_without_token(gateway, client, services, path):
    async with client.post(f"{gateway}{path}", json={"membership_number": "100000001"}) as response:
        assert response.status == 200
    assert services.identity.last.path == path


async def test_the_jwks_is_public(gateway, client, keys):
    async with client.get(f"{gateway}/api/v1/identity/.well-known/jwks.json") as response:
        assert response.status == 200
        assert (await response.json())["keys"][0]["kid"] == keys.kid


async def test_public_means_this_method_on_this_exact_path(gateway, client):
    for method, path in [
        ("POST", "/api/v1/identity/sessions/"),
        ("POST", "/api/v1/identity/sessions/refresh/extra"),
        ("GET", "/api/v1/identity/me"),
        ("DELETE", "/api/v1/identity/sessions"),  # POST is public there, DELETE is not
    ]:
        async with client.request(method, f"{gateway}{path}") as response:
            assert response.status == 401, (method, path)


async def test_a_method_the_document_does_not_declare_gets_405_before_any_token_check(gateway, client, services):
    async with client.get(f"{gateway}/openapi.json") as response:  # the document is merged
        assert "/api/v1/identity/sessions" in (await response.json())["paths"]
    forwarded = len(services.identity.seen)
    for method in ("GET", "PUT", "TRACE", "OPTIONS"):
        async with client.request(method, f"{gateway}/api/v1/identity/sessions") as response:
            assert response.status == 405, method
            assert response.headers["Allow"] == "DELETE, POST"
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert (await response.json())["code"] == "method_not_allowed"
    async with client.request("PATCH", f"{gateway}/api/v1/identity/me") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD"
    assert len(services.identity.seen) == forwarded  # never forwarded


def _agent_token(keys, **overrides) -> str:
    from shared.platform.auth import AGENT_AUDIENCE

    claims = {"aud": AGENT_AUDIENCE, "role": "agent", "mid": None}
    claims.update(overrides)
    token = keys.token(**claims)
    return token


async def test_back_office_routes_take_agent_tokens_only(gateway, client, services, keys):
    agent = _agent_token(keys)
    async with client.get(
        f"{gateway}/api/v1/claims/backoffice/claims", headers={"Authorization": f"Bearer {agent}"}
    ) as response:
        assert response.status == 200
    assert services.claims.last.headers["authorization"] == f"Bearer {agent}"
    before = len(services.claims.seen)
    for token in (
        keys.token(),  # a member's
        keys.token(role="agent"),  # member audience, agent role
        _agent_token(keys, role="member"),  # agent audience, member role
        _agent_token(keys, role=None),
    ):
        async with client.get(
            f"{gateway}/api/v1/claims/backoffice/claims", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            await _assert_invalid_token(response)
    assert len(services.claims.seen) == before


async def test_an_agent_token_reaches_no_member_route(gateway, client, services, keys):
    agent = _agent_token(keys)
    before = len(services.claims.seen)
    # Twice: the second answer must not come from the memory of verified tokens.
    for _ in range(2):
        for path in ("/api/v1/claims/reimbursements", "/api/v1/claims/backofficex", "/api/v1/claims/x/backoffice"):
            async with client.get(f"{gateway}{path}", headers={"Authorization": f"Bearer {agent}"}) as response:
                await _assert_invalid_token(response)
        async with client.get(
            f"{gateway}/api/v1/claims/backoffice/claims", headers={"Authorization": f"Bearer {agent}"}
        ) as response:
            assert response.status == 200
    assert len(services.claims.seen) == before + 2


async def test_the_agent_routes_of_identity_are_public(gateway, client, services):
    for path in (
        "/api/v1/identity/agent-passwords",
        "/api/v1/identity/agent-sessions",
        "/api/v1/identity/agent-sessions/refresh",
    ):
        async with client.post(f"{gateway}{path}", json={"email": "a@b.example"}) as response:
            assert response.status == 200
        assert services.identity.last.path == path
