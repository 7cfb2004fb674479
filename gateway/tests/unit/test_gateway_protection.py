"""What the gateway answers itself: unknown routes, body caps, rate limits, services down or
stalled, security headers and CORS. Always problem+json with a stable code."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.config import GatewaySettings

PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def _problem(response, status: int, code: str) -> dict:
    assert response.status == status
    assert response.headers["Content-Type"] == PROBLEM
    problem = await response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] == f"https://espace.example/problems/{code}"
    return problem


# --- unknown routes ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/unknown/things", "/api/v2/claims/x", "/api/v1", "/api/v1/", "/nothing-here"])
async def test_an_unknown_route_is_a_404_problem(gateway, client, bearer, path):
    async with client.get(f"{gateway}{path}", headers=bearer()) as response:
        problem = await _problem(response, 404, "not_found")
        assert problem["title"] == "Ressource introuvable"


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/identity/../claims/reimbursements",
        "/api/v1/identity/%2e%2e/claims/reimbursements",
        "/api/v1/claims/./reimbursements",
        "/api/v1/claims//reimbursements",
    ],
)
async def test_dot_segments_cannot_reach_another_service(gateway, raw, keys, target):
    response = await raw(
        gateway,
        f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys.token()}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert response.status == 404
    assert response.json()["code"] == "not_found"


# --- body caps --------------------------------------------------------------------------------


async def test_a_declared_body_over_the_cap_is_refused_before_reading(gateway, raw, services, keys):
    before = len(services.claims.seen)
    response = await raw(
        gateway,
        (
            "POST /api/v1/claims/claims HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {keys.token()}\r\nContent-Type: application/json\r\n"
            "Content-Length: 70000\r\nExpect: 100-continue\r\n\r\n"
        ).encode(),
    )
    assert response.status == 413
    assert response.header("Content-Type") == PROBLEM
    assert response.json()["code"] == "payload_too_large"
    assert "64 Ko" in response.json()["detail"]
    assert len(services.claims.seen) == before


async def test_a_declared_body_over_the_cap_is_refused_even_on_a_public_route(gateway, client, services):
    async with client.post(f"{gateway}/api/v1/identity/sessions", data=b"{" + b" " * 70_000 + b"}") as response:
        await _problem(response, 413, "payload_too_large")


async def test_a_chunked_body_is_cut_as_soon_as_it_passes_the_cap(gateway, client, services, bearer):
    before = len(services.claims.seen)
    sent = 0

    async def body():
        nonlocal sent
        for _ in range(64):  # 64 × 16 KiB = 1 MiB, far over the 64 KiB JSON cap
            sent += 16 * 1024
            yield b"x" * (16 * 1024)
            await asyncio.sleep(0)

    async with client.post(f"{gateway}/api/v1/claims/claims", data=body(), headers=bearer()) as response:
        await _problem(response, 413, "payload_too_large")
    # The service never got a whole body.
    assert all(len(seen.body) <= 64 * 1024 for seen in services.claims.seen[before:])


async def test_a_chunked_upload_over_the_cap_is_aborted_upstream(start_gateway, client, services, bearer):
    async with start_gateway(upload_max_body_bytes=512 * 1024) as url:
        sizes_before = list(services.documents.upload_sizes)

        async def body():
            for _ in range(64):  # 2 MiB
                yield b"y" * (32 * 1024)
                await asyncio.sleep(0)

        async with client.post(f"{url}/api/v1/documents/invoices/upload", data=body(), headers=bearer()) as response:
            problem = await _problem(response, 413, "payload_too_large")
            assert "512 Ko" in problem["detail"]
        # The service saw no complete 2 MiB upload.
        assert 2 * 1024 * 1024 not in services.documents.upload_sizes[len(sizes_before) :]


async def test_uploads_have_a_larger_cap_than_json_routes(gateway, client, bearer):
    payload = b"%PDF" + b"0" * (5 * 1024 * 1024)
    async with client.post(f"{gateway}/api/v1/documents/invoices/upload", data=payload, headers=bearer()) as response:
        assert response.status == 200
        assert (await response.json())["size"] == len(payload)


# --- rate limits ------------------------------------------------------------------------------


async def test_too_many_attempts_from_one_address_get_429_with_retry_after(start_gateway, client, services):
    async with start_gateway(rate_limit_per_ip="3/60", rate_limit_per_account="100/60") as url:
        statuses = []
        for n in range(3):
            async with client.post(
                f"{url}/api/v1/identity/sessions", json={"identifier": f"10000000{n}", "password": "x"}
            ) as response:
                statuses.append(response.status)
        assert statuses == [200, 200, 200]
        before = len(services.identity.seen)
        async with client.post(
            f"{url}/api/v1/identity/sessions", json={"identifier": "100000009", "password": "x"}
        ) as response:
            problem = await _problem(response, 429, "too_many_requests")
            assert problem["title"] == "Trop de requêtes"
            retry_after = int(response.headers["Retry-After"])
            assert 1 <= retry_after <= 20  # one token comes back every 20 s
        assert len(services.identity.seen) == before  # refused before the service
        # Another route has its own budget; an unlimited route is not counted.
        async with client.post(f"{url}/api/v1/identity/registrations", json={"membership_number": "1"}) as response:
            assert response.status == 200
        async with client.post(f"{url}/api/v1/identity/activations", json={"token": "t"}) as response:
            assert response.status == 200


async def test_too_many_attempts_on_one_account_get_429_whatever_the_address(start_gateway, client):
    async with start_gateway(rate_limit_per_ip="1000/60", rate_limit_per_account="2/60") as url:

        async def log_in(identifier: str) -> int:
            async with client.post(
                f"{url}/api/v1/identity/sessions", json={"identifier": identifier, "password": "x"}
            ) as response:
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                return response.status

        assert [await log_in("100000001") for _ in range(2)] == [200, 200]
        assert await log_in(" 100000001 ") == 429  # same account, normalised
        assert await log_in("100000002") == 200  # another account is not affected


async def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_PER_IP", "2/1m")
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_PER_ACCOUNT", "1/10")
    settings = GatewaySettings()
    assert (settings.ip_rate.limit, settings.ip_rate.window_s) == (2, 60)
    assert (settings.account_rate.limit, settings.account_rate.window_s) == (1, 10)


async def test_default_limits_let_a_test_suite_register_many_accounts(gateway, client):
    for n in range(25):
        async with client.post(
            f"{gateway}/api/v1/identity/registrations", json={"membership_number": f"2000000{n:02d}"}
        ) as response:
            assert response.status == 200


# --- services down or slow --------------------------------------------------------------------


async def test_a_stalled_service_gives_504_quickly(start_gateway, client, bearer):
    async with start_gateway(timeout_s=0.3) as url:
        started = time.monotonic()
        async with client.get(f"{url}/api/v1/claims/slow", headers=bearer()) as response:
            problem = await _problem(response, 504, "upstream_timeout")
            assert problem["title"] == "Service momentanément indisponible"
        assert time.monotonic() - started < 2.0


async def test_a_service_that_does_not_listen_gives_502(start_gateway, client, bearer, closed_port):
    async with start_gateway(claims_url=f"http://127.0.0.1:{closed_port}") as url:
        for method in ("GET", "POST"):
            async with client.request(method, f"{url}/api/v1/claims/reimbursements", headers=bearer()) as response:
                problem = await _problem(response, 502, "upstream_unavailable")
                assert problem["title"] == "Service momentanément indisponible"
        # The other services still answer.
        async with client.get(f"{url}/api/v1/documents/letters", headers=bearer()) as response:
            assert response.status == 200


# --- security headers and CORS ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path,auth",
    [
        ("/api/v1/claims/x", True),
        ("/api/v1/claims/x", False),
        ("/api/v1/nope", True),
        ("/healthz", False),
        ("/openapi.json", False),
    ],
)
async def test_every_answer_has_the_security_headers(gateway, client, bearer, path, auth):
    async with client.get(f"{gateway}{path}", headers=bearer() if auth else {}) as response:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.getall(name) == [value], name


async def test_the_docs_page_has_a_relaxed_csp_of_its_own(gateway, client):
    async with client.get(f"{gateway}/docs") as response:
        assert response.status == 200
        assert "swagger" in (await response.text()).lower()
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" in csp
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_preflight_from_an_allowed_origin_is_answered_by_the_gateway(gateway, client, services):
    before = len(services.claims.seen)
    async with client.options(
        f"{gateway}/api/v1/claims/reimbursements",
        headers={
            "Origin": "https://espace.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, X-Correlation-ID",
        },
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://espace.example"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "authorization" in response.headers["Access-Control-Allow-Headers"]
        assert response.headers["Access-Control-Max-Age"] == "600"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(services.claims.seen) == before


async def test_a_preflight_from_another_origin_is_refused(gateway, client):
    async with client.options(
        f"{gateway}/api/v1/claims/reimbursements",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    ) as response:
        await _problem(response, 403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_answers_to_an_allowed_origin_carry_cors_headers_and_others_do_not(gateway, client, bearer):
    async with client.get(
        f"{gateway}/api/v1/claims/x", headers={**bearer(), "Origin": "https://espace.example"}
    ) as response:
        assert response.headers.getall("Access-Control-Allow-Origin") == ["https://espace.example"]
        assert "X-Correlation-ID" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" in response.headers["Vary"]
    async with client.get(
        f"{gateway}/api/v1/claims/x", headers={**bearer(), "Origin": "https://evil.example"}
    ) as response:
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers
    async with client.get(f"{gateway}/api/v1/claims/x", headers={"Origin": "https://espace.example"}) as response:
        assert response.status == 401  # the browser can read the error too
        assert response.headers["Access-Control-Allow-Origin"] == "https://espace.example"
