"""Access-token verification, the same in the gateway and in every service.

identity signs short-lived EdDSA JWTs and publishes its public keys as JWKS. Every service
verifies the token itself (never trusting the gateway alone) and then checks that the member
owns what is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request

from shared.platform.problems import ProblemError

log = logging.getLogger(__name__)

ISSUER = "espace-identity"
AUDIENCE = "espace"
# Management-centre agents: their own audience and `role: agent`, so a member token can never
# reach a back-office route and an agent token never a member route.
AGENT_AUDIENCE = "espace-backoffice"
AGENT_ROLE = "agent"
ALGORITHMS = ["EdDSA"]
JWKS_PATH = "/api/v1/identity/.well-known/jwks.json"


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    member_id: uuid.UUID
    token_id: str


@dataclass(frozen=True)
class AgentPrincipal:
    agent_id: uuid.UUID
    token_id: str


class KeySource(Protocol):
    async def key_for(self, kid: str) -> Any | None: ...


class JwksKeySource:
    """Public keys fetched from identity's JWKS, cached, refetched when an unknown key id shows
    up (a key rotation) but at most once every `min_refresh_s` so bad tokens cannot hammer it."""

    def __init__(
        self, jwks_url: str, *, min_refresh_s: float = 30.0, ttl_s: float = 600.0, retry_after_failure_s: float = 2.0
    ) -> None:
        self.jwks_url = jwks_url
        self.min_refresh_s = min_refresh_s
        self.retry_after_failure_s = retry_after_failure_s
        self.ttl_s = ttl_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> Any | None:
        age = time.monotonic() - self._fetched_at
        if (kid not in self._keys and age >= self.min_refresh_s) or age >= self.ttl_s:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < 1.0:
                return  # another request just refreshed
            try:
                async with httpx.AsyncClient(timeout=3.0) as client:
                    response = await client.get(self.jwks_url)
                    response.raise_for_status()
                keys = {}
                for jwk in response.json().get("keys", []):
                    if jwk.get("kid"):
                        keys[jwk["kid"]] = jwt.PyJWK(jwk).key
                self._keys = keys
                self._fetched_at = time.monotonic()
            except Exception as exc:  # keep serving with the keys we have; try again shortly
                log.warning("jwks refresh failed", extra={"error_type": type(exc).__name__})
                self._fetched_at = time.monotonic() - self.min_refresh_s + self.retry_after_failure_s


def unauthorized(detail: str = "Votre session a expiré ou n'est pas valide. Reconnectez-vous.") -> ProblemError:
    return ProblemError(
        401, "invalid_token", "Authentification requise", detail, headers={"WWW-Authenticate": "Bearer"}
    )


class TokenVerifier:
    """Checks a token in full (EdDSA signature against identity's keys, audience, issuer, expiry)
    and remembers the ones it accepted.

    A member's access token comes back with every call for its whole life (minutes), and the full
    check (base64, JSON, Ed25519) is one of the biggest costs of a short request. A token accepted
    once is remembered, as its exact text and per audience, until the earlier of its expiry and
    `remember_s`: expiry stays exact, and a key withdrawn from the JWKS stops being honoured
    within `remember_s`. Refusals are never remembered; `remember_s=0` turns the memory off.
    """

    def __init__(self, keys: KeySource, *, remember_s: float = 60.0, max_entries: int = 20_000) -> None:
        self.keys = keys
        self.remember_s = remember_s
        self.max_entries = max_entries
        self._accepted: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}

    async def verify(self, token: str) -> Principal:
        """A member's access token (audience `espace`)."""
        claims = await self._decode(token, AUDIENCE)
        try:
            if claims.get("role", "member") != "member":
                raise ValueError("not a member token")
            return Principal(
                account_id=uuid.UUID(claims["sub"]), member_id=uuid.UUID(claims["mid"]), token_id=claims["jti"]
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise unauthorized() from exc

    async def verify_agent(self, token: str) -> AgentPrincipal:
        """A management-centre agent's access token (audience `espace-backoffice`, role agent)."""
        claims = await self._decode(token, AGENT_AUDIENCE)
        try:
            if claims.get("role") != AGENT_ROLE:
                raise ValueError("not an agent token")
            return AgentPrincipal(agent_id=uuid.UUID(claims["sub"]), token_id=claims["jti"])
        except (KeyError, ValueError, TypeError) as exc:
            raise unauthorized() from exc

    async def _decode(self, token: str, audience: str) -> dict[str, Any]:
        now = time.time()
        remembered = self._accepted.get((audience, token))
        if remembered is not None:
            if remembered[1] > now:
                return remembered[0]
            del self._accepted[(audience, token)]
        claims = await self._check(token, audience)
        if self.remember_s > 0:
            if len(self._accepted) >= self.max_entries:
                self._evict(now)
            self._accepted[(audience, token)] = (claims, min(float(claims["exp"]), now + self.remember_s))
        return claims

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, until) in self._accepted.items() if until <= now]:
            del self._accepted[key]
        excess = len(self._accepted) - self.max_entries * 9 // 10
        for key in list(self._accepted)[:max(0, excess)]:  # oldest first
            del self._accepted[key]

    def __len__(self) -> int:
        return len(self._accepted)

    async def _check(self, token: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized() from exc
        if header.get("alg") not in ALGORITHMS or not isinstance(header.get("kid"), str):
            raise unauthorized()
        key = await self.keys.key_for(header["kid"])
        if key is None:
            raise unauthorized()
        try:
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise unauthorized() from exc


def bearer_token(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Connectez-vous pour accéder à cette page.")
    return token.strip()


async def current_member(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.runtime.verifier
    return await verifier.verify(bearer_token(request))


CurrentMember = Annotated[Principal, Depends(current_member)]


async def current_agent(request: Request) -> AgentPrincipal:
    verifier: TokenVerifier = request.app.state.runtime.verifier
    return await verifier.verify_agent(bearer_token(request))


CurrentAgent = Annotated[AgentPrincipal, Depends(current_agent)]
