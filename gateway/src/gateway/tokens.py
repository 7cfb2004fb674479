"""Token check at the gateway: shared's TokenVerifier (EdDSA only, audience, issuer, expiry,
identity's JWKS), with a short memory of tokens it has already verified.

A member's access token comes back with every call for its whole life (minutes), and a full
check (base64, JSON, Ed25519) is the biggest cost of the gateway hop. A token verified once is
remembered, as its exact text, until the earlier of its expiry and `max_age_s`; so expiry is
still exact, and a key withdrawn from the JWKS stops being honoured here within `max_age_s`
(services verify every token themselves anyway). Refusals are never remembered.
"""

from __future__ import annotations

import time

import jwt

from shared.platform.auth import TokenVerifier


class CachedVerifier:
    def __init__(self, verifier: TokenVerifier, *, max_entries: int = 20_000, max_age_s: float = 60.0) -> None:
        self.verifier = verifier
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._valid_until: dict[str, float] = {}

    async def verify(self, token: str, *, agent: bool = False) -> None:
        """Returns when the token is valid; raises shared's `unauthorized()` ProblemError if not.
        `agent`: a back-office route, which takes an agent's token (its own audience) only."""
        check = self.verifier.verify_agent if agent else self.verifier.verify
        if self.max_age_s <= 0:
            await check(token)
            return
        now = time.time()
        cache_key = "agent:" + token if agent else token  # one token is never valid for both
        token_text, token = token, cache_key
        until = self._valid_until.get(token)
        if until is not None:
            if until > now:
                return
            del self._valid_until[token]
        await check(token_text)
        # Verified just now: reading `exp` again without the signature check is safe.
        exp = jwt.decode(token_text, options={"verify_signature": False}).get("exp")
        if not isinstance(exp, int | float):
            return
        if len(self._valid_until) >= self.max_entries:
            self._evict(now)
        self._valid_until[token] = min(float(exp), now + self.max_age_s)

    def _evict(self, now: float) -> None:
        for key in [k for k, until in self._valid_until.items() if until <= now]:
            del self._valid_until[key]
        excess = len(self._valid_until) - self.max_entries * 9 // 10
        if excess > 0:
            for key in list(self._valid_until)[:excess]:  # oldest first
                del self._valid_until[key]

    def __len__(self) -> int:
        return len(self._valid_until)
