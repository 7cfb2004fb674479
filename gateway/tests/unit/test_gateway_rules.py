"""The pure pieces: route table, token buckets, client address, settings, header rules."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings, Rate
from gateway.headers import downstream_response_headers, upstream_request_headers
from gateway.limits import InMemoryBuckets, RateLimiter, account_identifier
from gateway.proxy import client_address
from gateway.routes import PUBLIC_ROUTES, RATE_LIMITED, RouteTable
from shared.platform.auth import unauthorized
from shared.platform.problems import ProblemError


@pytest.fixture
def table() -> RouteTable:
    return RouteTable(GatewaySettings())


def test_each_service_prefix_goes_to_its_service(table):
    for name, port in [("identity", 8001), ("notifications", 8002), ("documents", 8003), ("claims", 8004)]:
        match = table.match("GET", f"/api/v1/{name}/anything/1")
        assert match is not None
        assert match.upstream.base_url == f"http://127.0.0.1:{port}"
    assert table.match("GET", "/api/v1/billing/x") is None
    assert table.match("GET", "/api/v1") is None
    assert table.match("GET", "/api/v1/identityx/me") is None


def test_only_listed_routes_are_public_and_rate_limited_routes_are_public(table):
    assert table.match("POST", "/api/v1/identity/sessions").public
    assert not table.match("GET", "/api/v1/identity/me").public
    assert not table.match("POST", "/api/v1/claims/sessions").public
    assert set(RATE_LIMITED) <= PUBLIC_ROUTES
    assert table.match("POST", "/api/v1/identity/sessions").account_fields == ("identifier", "membership_number")
    assert table.match("POST", "/api/v1/identity/activations").account_fields is None


def test_documents_get_the_upload_cap_and_timeout(table):
    settings = GatewaySettings()
    documents = table.match("POST", "/api/v1/documents/invoices").upstream
    claims = table.match("POST", "/api/v1/claims/claims").upstream
    assert documents.max_body == settings.upload_max_body_bytes == 20 * 1024 * 1024
    assert claims.max_body == settings.max_body_bytes == 64 * 1024
    assert documents.timeout.sock_read == settings.upload_timeout_s
    assert claims.timeout.sock_read == settings.timeout_s
    assert claims.timeout.sock_connect == settings.connect_timeout_s


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/identity/../claims/x",
        "/api/v1/claims/./x",
        "/api/v1/claims//x",
        "/api/v1/claims/x/..",
        "/api/v1/claims/a/../b",
    ],
)
def test_dot_segments_and_empty_segments_match_nothing(table, path):
    assert table.match("GET", path) is None


def test_dotted_names_are_not_dot_segments(table):
    assert table.match("GET", "/api/v1/identity/.well-known/jwks.json").public
    assert table.match("GET", "/api/v1/documents/files/report.v2.pdf") is not None


def test_rate_limits_can_be_switched_off():
    table = RouteTable(GatewaySettings(rate_limits_enabled=False))
    assert table.match("POST", "/api/v1/identity/sessions").account_fields is None


async def test_a_token_bucket_allows_a_burst_then_refills_over_the_window():
    now = [1000.0]
    buckets = InMemoryBuckets(clock=lambda: now[0])
    rate = Rate(3, 60)
    assert [(await buckets.take("k", rate)).allowed for _ in range(4)] == [True, True, True, False]
    refused = await buckets.take("k", rate)
    assert refused.retry_after_s == 20  # one token per 20 s
    now[0] += 19.5
    assert (await buckets.take("k", rate)).retry_after_s == 1
    now[0] += 0.5
    assert (await buckets.take("k", rate)).allowed
    assert not (await buckets.take("k", rate)).allowed
    assert (await buckets.take("other", rate)).allowed


async def test_the_bucket_store_stays_bounded():
    now = [0.0]
    buckets = InMemoryBuckets(max_keys=100, clock=lambda: now[0])
    for n in range(1000):
        now[0] += 0.001
        await buckets.take(f"k{n}", Rate(5, 60))
    assert len(buckets) <= 100


async def test_account_keys_are_normalised_and_never_in_clear():
    limiter = RateLimiter(GatewaySettings(rate_limit_per_account="1/60"))
    assert limiter.pseudonym(" ABC123 ") == limiter.pseudonym("abc123")
    assert "abc123" not in limiter.pseudonym("abc123")
    assert (await limiter.check_account("POST /x", "Abc123")).allowed
    assert not (await limiter.check_account("POST /x", "abc123 ")).allowed
    assert (await limiter.check_account("POST /y", "abc123")).allowed  # per route


def test_the_account_identifier_is_the_first_field_present():
    fields = ("identifier", "membership_number")
    assert account_identifier(b'{"membership_number": "1", "identifier": "2"}', fields) == "2"
    assert account_identifier(b'{"membership_number": "1"}', fields) == "1"
    assert account_identifier(b'{"identifier": "  ", "membership_number": 5}', fields) is None
    assert account_identifier(b"not json", fields) is None
    assert account_identifier(b"[1, 2]", fields) is None
    assert account_identifier(b"", fields) is None
    assert account_identifier(b"\x80\x81", fields) is None  # not UTF-8
    assert account_identifier(b"[" * 50_000 + b"]" * 50_000, fields) is None  # nested beyond the parser


def test_an_identifier_with_no_utf8_form_still_gets_a_key():
    limiter = RateLimiter(GatewaySettings())
    identifier = account_identifier(b'{"identifier": "a\\ud800"}', ("identifier",))
    assert identifier == "a\ud800"
    assert limiter.pseudonym(identifier) != limiter.pseudonym("a")


def test_client_address_trusts_forwarded_for_only_behind_trusted_proxies():
    scope = {"client": ("10.0.0.5", 1234)}
    assert client_address(scope, b"6.6.6.6", 0) == ("10.0.0.5", "10.0.0.5")
    # One ingress in front: it appended the real client; anything before that is the client's claim.
    assert client_address(scope, b"6.6.6.6, 203.0.113.7", 1) == ("203.0.113.7", "6.6.6.6, 203.0.113.7, 10.0.0.5")
    assert client_address(scope, None, 1) == ("10.0.0.5", "10.0.0.5")
    assert client_address(scope, b"203.0.113.7", 3)[0] == "203.0.113.7"


@pytest.mark.parametrize(
    "text,expected", [("300/60", (300, 60)), ("5/1m", (5, 60)), ("100/1h", (100, 3600)), ("2/0.5", (2, 0.5))]
)
def test_rates_parse(text, expected):
    rate = Rate.parse(text)
    assert (rate.limit, rate.window_s) == expected


@pytest.mark.parametrize("text", ["300", "0/60", "a/b", "5/0"])
def test_bad_rates_fail_at_start(text):
    with pytest.raises(ValidationError):
        GatewaySettings(rate_limit_per_ip=text)


def test_cors_origins_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://espace.example, https://m.espace.example/")
    assert GatewaySettings().cors_origins == ["https://espace.example", "https://m.espace.example"]
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", '["http://localhost:5173"]')
    assert GatewaySettings().cors_origins == ["http://localhost:5173"]
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_plain_http_origins_are_refused_in_prod():
    with pytest.raises(ValidationError):
        GatewaySettings(environment="prod", cors_origins=["http://espace.example"])
    assert GatewaySettings(environment="prod", cors_origins=["https://espace.example"]).cors_origins


def test_service_urls_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_CLAIMS_URL", "http://claims.internal:80/")
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    settings = GatewaySettings()
    assert settings.service_urls()["claims"] == "http://claims.internal:80"
    assert settings.port == 9000
    assert settings.effective_jwks_url == "http://127.0.0.1:8001/api/v1/identity/.well-known/jwks.json"


def test_request_headers_lose_hop_by_hop_and_gateway_owned_ones():
    raw = [
        (b"host", b"espace.example"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"te", b"trailers"),
        (b"authorization", b"Bearer t"),
        (b"x-correlation-id", b"abcdefgh12"),
        (b"traceparent", b"00-..."),
        (b"content-length", b"12"),
        (b"accept", b"application/json"),
    ]
    assert upstream_request_headers(raw, {b"x-hop"}) == [("authorization", "Bearer t"), ("accept", "application/json")]


def test_response_headers_lose_hop_by_hop_and_the_ones_the_gateway_sets():
    raw = (
        (b"Content-Type", b"application/json"),
        (b"Connection", b"keep-alive, X-Internal"),
        (b"X-Internal", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Server", b"uvicorn"),
        (b"Date", b"now"),
        (b"X-Correlation-ID", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Strict-Transport-Security", b"max-age=1"),
    )
    assert downstream_response_headers(raw) == [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
