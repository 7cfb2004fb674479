"""Token check at the gateway: shared's TokenVerifier (EdDSA only, audience, issuer, expiry,
identity's JWKS), with a short memory of tokens it has already verified.

A member's access token comes back with every call for its whole life (minutes), and a full
check (base64, JSON, Ed25519) is the biggest cost of the gateway hop. A token verified once is
remembered, as its exact text, until the earlier of its expiry and `max_age_s`; so expiry is
still exact, and a key withdrawn from the JWKS stops being honoured here within `max_age_s`
(services verify every token themselves anyway). Refusals are never remembered.

Member tokens and agent tokens (back office: own audience, `role: agent`) are remembered apart:
a token verified as one kind is never taken for the other.
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
        self._agent_valid_until: dict[str, float] = {}

    async def verify(self, token: str, *, agent: bool = False) -> None:
        """Returns when the token is valid — a member's, or with `agent` an agent's; raises
        shared's `unauthorized()` ProblemError if not."""
        check = self.verifier.verify_agent if agent else self.verifier.verify
        if self.max_age_s <= 0:
            await check(token)
            return
        memory = self._agent_valid_until if agent else self._valid_until
        now = time.time()
        until = memory.get(token)
        if until is not None:
            if until > now:
                return
            del memory[token]
        await check(token)
        # Verified just now: reading `exp` again without the signature check is safe.
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if not isinstance(exp, int | float):
            return
        if len(memory) >= self.max_entries:
            self._evict(memory, now)
        memory[token] = min(float(exp), now + self.max_age_s)

    def _evict(self, memory: dict[str, float], now: float) -> None:
        for key in [k for k, until in memory.items() if until <= now]:
            del memory[key]
        excess = len(memory) - self.max_entries * 9 // 10
        if excess > 0:
            for key in list(memory)[:excess]:  # oldest first
                del memory[key]

    def __len__(self) -> int:
        return len(self._valid_until) + len(self._agent_valid_until)
