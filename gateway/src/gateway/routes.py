"""The route table: which service answers a path, which routes need no token, which are
rate-limited, and the body cap and timeout of each. Small and explicit on purpose: a route
that is not listed as public needs a valid access token."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import ClientTimeout

from gateway.config import GatewaySettings

API_PREFIX = "/api/v1/"

# Routes a visitor calls before having a token. Exact (method, path) matches only.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/identity/registrations"),
        ("POST", "/api/v1/identity/activations"),
        ("POST", "/api/v1/identity/activations/resend"),
        ("POST", "/api/v1/identity/sessions"),
        ("POST", "/api/v1/identity/sessions/refresh"),
        ("POST", "/api/v1/identity/password-resets"),
        ("POST", "/api/v1/identity/password-resets/confirm"),
        ("POST", "/api/v1/identity/email-changes/confirm"),
        ("POST", "/api/v1/identity/agent-passwords"),
        ("POST", "/api/v1/identity/agent-sessions"),
        ("POST", "/api/v1/identity/agent-sessions/refresh"),
        ("GET", "/api/v1/identity/.well-known/jwks.json"),
        ("HEAD", "/api/v1/identity/.well-known/jwks.json"),
        # The directory of health professionals: public information, searched before log-in.
        ("GET", "/api/v1/claims/providers"),
        ("GET", "/api/v1/claims/specialties"),
    }
)

# Public path prefixes: one more segment, no further '/'. A signed download link carries its own
# authorisation (an HMAC over document, member and expiry, checked by documents), never a token.
PUBLIC_PREFIXES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/documents/downloads/"),
        ("HEAD", "/api/v1/documents/downloads/"),
    }
)

# Back-office routes (/api/v1/<service>/backoffice/...) take an agent's token (audience
# espace-backoffice, role agent), never a member's; the service checks it again.
BACKOFFICE_SEGMENT = "backoffice"

# Routes that guess or spam: limited per client IP and per account identifier. The value names
# the JSON body fields whose first present value identifies the account (hashed, never kept
# in clear); the body of these routes is read (within the JSON cap) before forwarding.
RATE_LIMITED: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/api/v1/identity/registrations"): ("membership_number",),
    ("POST", "/api/v1/identity/activations/resend"): ("membership_number", "identifier", "email"),
    ("POST", "/api/v1/identity/sessions"): ("identifier", "membership_number"),
    ("POST", "/api/v1/identity/sessions/refresh"): ("refresh_token",),
    ("POST", "/api/v1/identity/password-resets"): ("identifier", "membership_number", "email"),
    # Management-centre agents: the same limits as the members' log-in.
    ("POST", "/api/v1/identity/agent-passwords"): ("token",),
    ("POST", "/api/v1/identity/agent-sessions"): ("email",),
    ("POST", "/api/v1/identity/agent-sessions/refresh"): ("refresh_token",),
    # Public searches: per client IP only (no account, no body).
    ("GET", "/api/v1/claims/providers"): (),
}

# Services whose routes carry files: bigger body cap, longer timeout.
UPLOAD_SERVICES = frozenset({"documents"})

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    max_body: int
    timeout: ClientTimeout
    # Pre-encoded, used on every request.
    host_header: str


# /api/v1/<service>/backoffice/...: management-centre routes, for agent tokens only; every other
# protected route is for member tokens only.
BACKOFFICE_SEGMENT = "backoffice"


@dataclass(frozen=True)
class Match:
    upstream: Upstream
    public: bool
    account_fields: tuple[str, ...] | None  # None: not rate-limited
    backoffice: bool = False


class RouteTable:
    def __init__(self, settings: GatewaySettings) -> None:
        self.upstreams: dict[str, Upstream] = {}
        for name, base_url in settings.service_urls().items():
            upload = name in UPLOAD_SERVICES
            read_timeout = settings.upload_timeout_s if upload else settings.timeout_s
            self.upstreams[name] = Upstream(
                name=name,
                base_url=base_url,
                max_body=settings.upload_max_body_bytes if upload else settings.max_body_bytes,
                # sock_read bounds the wait for the answer (it starts once the request body is
                # sent, so a slow upload is not cut) and each gap while it streams; `connect`
                # bounds the wait for a pooled connection plus the connect itself.
                timeout=ClientTimeout(
                    total=None,
                    connect=read_timeout,
                    sock_connect=settings.connect_timeout_s,
                    sock_read=read_timeout,
                ),
                host_header=base_url.split("://", 1)[-1].split("/", 1)[0],
            )
        self.rate_limits_enabled = settings.rate_limits_enabled

    def match(self, method: str, path: str) -> Match | None:
        """The upstream for /api/v1/<service>[/...], or None (unknown service, or a path with
        '.'/'..' segments, which could be normalised into another service's routes)."""
        if not path.startswith(API_PREFIX):
            return None
        rest = path[len(API_PREFIX) :]
        name, _, tail = rest.partition("/")
        upstream = self.upstreams.get(name)
        if upstream is None:
            return None
        if "/." in path or "//" in path:
            segments = tail.split("/")
            if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
                return None
        key = (method, path)
        account_fields = RATE_LIMITED.get(key) if self.rate_limits_enabled else None
        backoffice = tail.split("/", 1)[0] == BACKOFFICE_SEGMENT
        return Match(upstream=upstream, public=is_public(method, path), account_fields=account_fields,
                     backoffice=backoffice)


def _public_prefix(method: str, path: str) -> bool:
    for prefix_method, prefix in PUBLIC_PREFIXES:
        if method == prefix_method and path.startswith(prefix):
            rest = path[len(prefix) :]
            if rest and "/" not in rest:
                return True
    return False


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC_ROUTES or _public_prefix(method, path)
