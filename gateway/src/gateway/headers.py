"""Header rules: what goes upstream, what comes back, and what the gateway adds to every answer
(security headers, CORS). Headers stay as the bytes uvicorn and aiohttp hand over: no
per-request decoding beyond what is forwarded."""

from __future__ import annotations

from gateway.config import GatewaySettings

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the gateway sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Never taken from the client: the gateway rewrites or sets these.
_DROP_FROM_CLIENT = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"x-correlation-id",
    b"x-request-id",  # taken as the correlation id, which is what goes upstream
    b"traceparent",
    b"tracestate",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-real-ip",
    b"forwarded",
}

# Set by the gateway on every answer (or by uvicorn): an upstream's own copies are dropped.
SECURITY_HEADER_NAMES = (
    b"strict-transport-security",
    b"x-content-type-options",
    b"content-security-policy",
    b"referrer-policy",
    b"x-frame-options",
)
_DROP_FROM_UPSTREAM = (
    HOP_BY_HOP
    | set(SECURITY_HEADER_NAMES)
    | {
        b"date",
        b"server",
        b"x-correlation-id",
        b"x-request-id",
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-expose-headers",
        b"access-control-allow-methods",
        b"access-control-allow-headers",
        b"access-control-max-age",
    }
)

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI (FastAPI's page: assets from jsDelivr, one inline script), only on /docs.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    b"style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; "
    b"connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Header names listed in Connection: hop-by-hop too (RFC 9110 §7.6.1)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return named


def upstream_request_headers(raw: list[tuple[bytes, bytes]], extra_drop: set[bytes] | None) -> list[tuple[str, str]]:
    drop = _DROP_FROM_CLIENT | extra_drop if extra_drop else _DROP_FROM_CLIENT
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw if n not in drop]


def downstream_response_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """aiohttp's raw headers keep the service's casing: compare lower-cased, send lower-cased."""
    out: list[tuple[bytes, bytes]] = []
    extra_drop: set[bytes] | None = None
    for name, value in raw:
        lname = name.lower()
        if lname == b"connection":
            extra_drop = {t.strip().lower() for t in value.split(b",") if t.strip()}
        if lname not in _DROP_FROM_UPSTREAM:
            out.append((lname, value))
    if extra_drop:
        out = [(n, v) for n, v in out if n not in extra_drop]
    return out


class SecurityHeaders:
    def __init__(self, settings: GatewaySettings) -> None:
        common = [
            (b"strict-transport-security", f"max-age={settings.hsts_max_age_s}; includeSubDomains".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        self.api = [*common, (b"content-security-policy", API_CSP)]
        self.docs = [*common, (b"content-security-policy", DOCS_CSP)]

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        return self.docs if path in DOCS_PATHS else self.api


class Cors:
    """An exact allow-list of origins. Preflights are answered by the gateway; answers to an
    allowed origin carry Access-Control-Allow-Origin; other origins get no CORS header (the
    browser then hides the answer). Tokens travel in Authorization, not cookies: no credentials."""

    ALLOW_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    ALLOW_HEADERS = frozenset(
        {
            "authorization",
            "content-type",
            "accept",
            "accept-language",
            "x-correlation-id",
            "traceparent",
            "tracestate",
            "idempotency-key",
            "if-match",
            "if-none-match",
        }
    )
    EXPOSE_HEADERS = b"X-Correlation-ID, X-Request-ID, Retry-After, Content-Disposition, Location, ETag"

    def __init__(self, settings: GatewaySettings) -> None:
        self.origins = frozenset(o.encode() for o in settings.cors_origins)
        self.max_age = str(settings.cors_max_age_s).encode()
        self.enabled = bool(self.origins)

    def allowed(self, origin: bytes | None) -> bool:
        return origin is not None and origin in self.origins

    # On every answer while CORS is on, allowed origin or not: a shared cache must not hand an
    # answer made for one origin (or none) to another.
    VARY = (b"vary", b"Origin")

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", self.EXPOSE_HEADERS),
        ]

    def preflight_headers(self, origin: bytes, requested_headers: bytes | None) -> list[tuple[bytes, bytes]] | None:
        """Headers of a 204 preflight answer, or None when a requested header is not allowed."""
        allow = sorted(self.ALLOW_HEADERS)
        if requested_headers:
            asked = {h.strip().lower() for h in requested_headers.decode("latin-1").split(",") if h.strip()}
            if not asked <= self.ALLOW_HEADERS:
                return None
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", self.ALLOW_METHODS),
            (b"access-control-allow-headers", ", ".join(allow).encode()),
            (b"access-control-max-age", self.max_age),
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]
