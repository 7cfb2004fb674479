"""TokenVerifier's memory of accepted tokens (services and the gateway): real Ed25519 tokens,
a key source that counts how often a full check needed a key."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.platform.auth import AGENT_AUDIENCE, AGENT_ROLE, AUDIENCE, ISSUER, TokenVerifier
from shared.platform.problems import ProblemError

_KEY = Ed25519PrivateKey.generate()


class _CountingKeys:
    def __init__(self) -> None:
        self.lookups = 0

    async def key_for(self, kid: str):
        self.lookups += 1
        return _KEY.public_key() if kid == "k1" else None


def _token(*, exp: float, audience: str = AUDIENCE, role: str = "member", kid: str = "k1") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "sub": str(uuid.uuid4()), "mid": str(uuid.uuid4()), "jti": uuid.uuid4().hex,
              "iat": now, "exp": int(exp), "role": role}
    return jwt.encode(claims, _KEY, algorithm="EdDSA", headers={"kid": kid})


async def test_an_accepted_token_is_remembered_until_its_expiry_at_most():
    keys = _CountingKeys()
    verifier = TokenVerifier(keys, remember_s=60)
    token = _token(exp=time.time() + 300)
    first = await verifier.verify(token)
    for _ in range(5):
        assert await verifier.verify(token) == first
    assert keys.lookups == 1
    # An entry never outlives the token: one expiring in 2 s is remembered until then, not 60 s.
    short = _token(exp=time.time() + 2)
    await verifier.verify(short)
    [(claims, until)] = [v for (aud, t), v in verifier._accepted.items() if t == short]
    assert until == claims["exp"]
    verifier._accepted[(AUDIENCE, short)] = (claims, time.time() - 0.001)  # as if it had expired
    await verifier.verify(short)
    assert keys.lookups == 3  # checked in full again


async def test_refusals_are_never_remembered():
    keys = _CountingKeys()
    verifier = TokenVerifier(keys)
    expired = _token(exp=time.time() - 10)
    for _ in range(3):
        with pytest.raises(ProblemError):
            await verifier.verify(expired)
    assert keys.lookups == 3
    assert len(verifier) == 0


async def test_a_remembered_token_is_still_only_good_for_its_own_audience():
    verifier = TokenVerifier(_CountingKeys())
    member = _token(exp=time.time() + 300)
    agent = _token(exp=time.time() + 300, audience=AGENT_AUDIENCE, role=AGENT_ROLE)
    await verifier.verify(member)
    await verifier.verify_agent(agent)
    with pytest.raises(ProblemError):
        await verifier.verify_agent(member)
    with pytest.raises(ProblemError):
        await verifier.verify(agent)


async def test_the_memory_stays_bounded_and_can_be_off():
    keys = _CountingKeys()
    verifier = TokenVerifier(keys, max_entries=50)
    for _ in range(200):
        await verifier.verify(_token(exp=time.time() + 300))
    assert len(verifier) <= 50
    off = TokenVerifier(keys, remember_s=0)
    token = _token(exp=time.time() + 300)
    before = keys.lookups
    await off.verify(token)
    await off.verify(token)
    assert keys.lookups == before + 2
    assert len(off) == 0
