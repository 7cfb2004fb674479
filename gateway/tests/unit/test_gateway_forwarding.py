"""Forwarding: method, path, query, body and headers reach the service as sent; answers come
back as the service gave them, streamed both ways."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re

from shared.platform.logging import JsonFormatter


async def test_forwards_method_path_query_body_and_headers(gateway, client, services, bearer):
    body = json.dumps({"amount_cents": 4200, "label": "Pharmacie"}).encode()
    async with client.post(
        f"{gateway}/api/v1/claims/claims/abc%2Fdef?b=2&a=1&a=3",
        data=body,
        headers={**bearer(), "Content-Type": "application/json", "X-Custom": "yes", "Accept-Language": "fr-FR"},
    ) as response:
        assert response.status == 200
        answer = await response.json()
        assert response.headers["X-Service-Header"] == "kept"
        assert response.headers["Content-Type"].startswith("application/json")
    assert answer["service"] == "claims"
    seen = services.claims.last
    assert seen.method == "POST"
    assert seen.raw_path == "/api/v1/claims/claims/abc%2Fdef"  # encoding kept as sent
    assert seen.query == "b=2&a=1&a=3"
    assert seen.body == body
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-length"] == str(len(body))
    assert seen.headers["x-custom"] == "yes"
    assert seen.headers["accept-language"] == "fr-FR"
    assert seen.headers["authorization"].startswith("Bearer ")  # the service verifies it too
    assert seen.headers["host"] == services.claims.url.removeprefix("http://")
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert seen.headers["x-forwarded-proto"] == "http"
    assert seen.headers["x-forwarded-host"] == gateway.removeprefix("http://")


async def test_every_method_is_forwarded_and_status_passes_through(gateway, client, services, bearer):
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        async with client.request(method, f"{gateway}/api/v1/notifications/things/1", headers=bearer()) as response:
            assert response.status == 200
            assert (await response.json())["method"] == method
    async with client.head(f"{gateway}/api/v1/notifications/things/1", headers=bearer()) as response:
        assert response.status == 200
        assert services.notifications.last.method == "HEAD"
    async with client.get(f"{gateway}/api/v1/claims/status?code=409", headers=bearer()) as response:
        assert response.status == 409
        assert await response.json() == {"error": "nope"}


async def test_bodiless_answers_pass_through(gateway, client, bearer):
    async with client.get(f"{gateway}/api/v1/claims/not-modified", headers=bearer()) as response:
        assert response.status == 304
        assert response.headers["ETag"] == '"v1"'
    async with client.get(f"{gateway}/api/v1/claims/status?code=204", headers=bearer()) as response:
        assert response.status == 204
        assert await response.read() == b""
    # The connection is still good for the next request.
    async with client.get(f"{gateway}/api/v1/claims/x", headers=bearer()) as response:
        assert response.status == 200


async def test_the_clients_hop_by_hop_and_forwarding_headers_are_not_passed_on(gateway, raw, services, keys):
    token = keys.token()
    response = await raw(
        gateway,
        (
            "GET /api/v1/claims/hop HTTP/1.1\r\n"
            "Host: espace.example\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Connection: close, X-Secret-Hop\r\n"
            "X-Secret-Hop: drop me\r\n"
            "Keep-Alive: timeout=5\r\n"
            "Proxy-Authorization: Basic abc\r\n"
            "X-Forwarded-For: 6.6.6.6\r\n"
            "X-Real-IP: 6.6.6.6\r\n"
            "Forwarded: for=6.6.6.6\r\n"
            "\r\n"
        ).encode(),
    )
    assert response.status == 200
    seen = services.claims.last.headers
    for name in ("x-secret-hop", "keep-alive", "proxy-authorization", "x-real-ip", "forwarded"):
        assert name not in seen, name
    assert seen["x-forwarded-for"] == "127.0.0.1"  # no trusted proxy: the client's own claim is dropped
    assert seen["x-forwarded-host"] == "espace.example"
    assert seen["host"] == services.claims.url.removeprefix("http://")


async def test_the_services_hop_by_hop_and_security_headers_are_replaced(gateway, client, bearer):
    async with client.get(f"{gateway}/api/v1/claims/headers", headers=bearer()) as response:
        assert response.status == 200
        assert response.headers["X-Service-Header"] == "kept"
        assert "Keep-Alive" not in response.headers
        assert response.headers.getall("X-Frame-Options") == ["DENY"]
        assert response.headers.getall("Content-Security-Policy") == ["default-src 'none'; frame-ancestors 'none'"]


async def test_answers_are_streamed_not_buffered(gateway, client, services, bearer):
    services.claims.release.clear()
    async with client.get(f"{gateway}/api/v1/claims/stream", headers=bearer()) as response:
        assert response.status == 200
        # The service has sent only its first chunk and waits: it must already be here.
        first = await asyncio.wait_for(response.content.readany(), 5)
        assert first == b"first;"
        services.claims.release.set()
        assert await response.content.read() == b"second;"


async def test_big_answers_arrive_whole(gateway, client, bearer):
    async with client.get(f"{gateway}/api/v1/documents/big", headers=bearer()) as response:
        assert response.status == 200
        assert len(await response.read()) == 3 * 1024 * 1024


async def test_uploads_are_streamed_to_the_service_as_they_arrive(gateway, client, services, bearer):
    services.documents.first_chunk.clear()
    chunk = b"%PDF" + b"z" * (256 * 1024 - 4)
    digest = hashlib.sha256()

    async def body():
        digest.update(chunk)
        yield chunk
        # Only goes on once the service has the first chunk: a buffering gateway would hang here.
        await asyncio.wait_for(services.documents.first_chunk.wait(), 5)
        for _ in range(19):
            digest.update(chunk)
            yield chunk

    async with client.post(
        f"{gateway}/api/v1/documents/invoices/upload",
        data=body(),
        headers={**bearer(), "Content-Type": "application/pdf"},
    ) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer == {"size": 20 * len(chunk), "sha256": digest.hexdigest()}


async def test_redirects_are_passed_back_not_followed(gateway, client, bearer):
    async with client.get(f"{gateway}/api/v1/claims/redirect", headers=bearer(), allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/elsewhere"


async def test_cookies_of_one_answer_are_never_sent_with_another_request(gateway, client, services, bearer):
    async with client.get(f"{gateway}/api/v1/claims/cookie", headers=bearer()) as response:
        assert "session=secret-of-someone" in response.headers["Set-Cookie"]
    async with client.get(f"{gateway}/api/v1/claims/after-cookie", headers=bearer()) as response:
        assert response.status == 200
    assert "cookie" not in services.claims.last.headers


async def test_a_correlation_id_is_made_returned_and_passed_to_the_service(gateway, client, services, bearer):
    async with client.get(f"{gateway}/api/v1/claims/x", headers=bearer()) as response:
        made = response.headers["X-Correlation-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert services.claims.last.headers["x-correlation-id"] == made
    assert [k for k, _ in services.claims.last.raw_headers].count("x-correlation-id") == 1


async def test_a_valid_correlation_id_is_kept_and_an_invalid_one_replaced(gateway, client, services, bearer):
    async with client.get(
        f"{gateway}/api/v1/claims/x", headers={**bearer(), "X-Correlation-ID": "web-2f1c9a7e-01"}
    ) as response:
        assert response.headers.getall("X-Correlation-ID") == ["web-2f1c9a7e-01"]
    assert services.claims.last.headers["x-correlation-id"] == "web-2f1c9a7e-01"
    async with client.get(
        f"{gateway}/api/v1/claims/x", headers={**bearer(), "X-Correlation-ID": "bad id\\n<script>"}
    ) as response:
        replaced = response.headers["X-Correlation-ID"]
    assert replaced != "bad id\\n<script>"
    assert services.claims.last.headers["x-correlation-id"] == replaced


async def test_gateway_answers_carry_the_correlation_id_too(gateway, client):
    async with client.get(f"{gateway}/api/v1/claims/x", headers={"X-Correlation-ID": "mobile-123456789"}) as response:
        assert response.status == 401
        assert response.headers["X-Correlation-ID"] == "mobile-123456789"


async def test_w3c_trace_context_continues_into_the_service(gateway, client, services, bearer):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    async with client.get(f"{gateway}/api/v1/claims/x", headers={**bearer(), "traceparent": incoming}) as response:
        assert response.status == 200
    forwarded = services.claims.last.headers["traceparent"]
    version, forwarded_trace, parent, flags = forwarded.split("-")
    assert forwarded_trace == trace_id  # same trace
    assert parent != "00f067aa0ba902b7"  # the gateway's own span is the parent now
    async with client.get(f"{gateway}/api/v1/claims/x", headers=bearer()) as response:
        assert response.status == 200
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", services.claims.last.headers["traceparent"])


class _Lines(logging.Handler):
    """Formats at emit time, in the request's context (where the correlation id is)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("gateway"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_one_access_log_line_per_request_without_query_token_or_body(gateway, client, bearer):
    handler = _Lines()
    logging.getLogger("gateway.access").addHandler(handler)
    try:
        headers = {**bearer(), "X-Correlation-ID": "log-test-000001"}
        async with client.post(
            f"{gateway}/api/v1/claims/search?email=camille.martin%40example.org&token=abc",
            data=b'{"email": "camille.martin@example.org"}',
            headers=headers,
        ) as response:
            assert response.status == 200
        for _ in range(100):
            lines = [line for line in handler.lines if line.get("path") == "/api/v1/claims/search"]
            if lines:
                break
            await asyncio.sleep(0.01)
    finally:
        logging.getLogger("gateway.access").removeHandler(handler)
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST"
    assert line["path"] == "/api/v1/claims/search"
    assert line["status"] == 200
    assert line["upstream"] == "claims"
    assert line["correlation_id"] == "log-test-000001"
    assert isinstance(line["duration_ms"], float)
    text = json.dumps(line)
    assert "example.org" not in text and "token" not in text and "Bearer" not in text and "?" not in text


async def test_health_and_readiness(gateway, client):
    async with client.get(f"{gateway}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with client.get(f"{gateway}/readyz") as response:
        assert response.status == 200
        ready = await response.json()
    assert ready["status"] == "ok"
    assert ready["checks"] == {"client_session": "ok"}
    assert ready["upstreams"] == {"identity": "ok", "notifications": "ok", "documents": "ok", "claims": "ok"}


async def test_readiness_reports_a_down_service_without_failing(start_gateway, client, closed_port):
    async with start_gateway(claims_url=f"http://127.0.0.1:{closed_port}") as url:
        async with client.get(f"{url}/readyz") as response:
            assert response.status == 200
            ready = await response.json()
    assert ready["status"] == "ok"
    assert ready["upstreams"]["claims"] == "down"
    assert ready["upstreams"]["identity"] == "ok"
