import asyncio
import uuid

import jwt
import pytest

from identity.adapters.password_hasher import AsyncPasswordHasher
from identity.adapters.signing import KeyRing
from shared.platform.auth import TokenVerifier
from shared.platform.problems import ProblemError


def test_an_access_token_signed_by_the_ring_verifies_and_a_tampered_one_does_not():
    ring = KeyRing.load([])
    account_id, member_id = uuid.uuid4(), uuid.uuid4()
    token = ring.sign_access_token(account_id=account_id, member_id=member_id, ttl_seconds=60)
    principal = asyncio.run(TokenVerifier(ring).verify(token))
    assert (principal.account_id, principal.member_id) == (account_id, member_id)

    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    with pytest.raises(ProblemError):
        asyncio.run(TokenVerifier(ring).verify(forged))
    other_ring = KeyRing.load([])
    with pytest.raises(ProblemError):
        asyncio.run(TokenVerifier(other_ring).verify(token))


def test_expired_tokens_and_other_algorithms_are_refused():
    ring = KeyRing.load([])
    expired = ring.sign_access_token(account_id=uuid.uuid4(), member_id=uuid.uuid4(), ttl_seconds=-10)
    with pytest.raises(ProblemError):
        asyncio.run(TokenVerifier(ring).verify(expired))
    hs256 = jwt.encode({"sub": str(uuid.uuid4())}, "an-hmac-secret-of-at-least-32-bytes!", algorithm="HS256", headers={"kid": ring.keys[0].kid})
    with pytest.raises(ProblemError):
        asyncio.run(TokenVerifier(ring).verify(hs256))


def test_the_jwks_publishes_only_public_keys():
    ring = KeyRing.load([])
    [key] = ring.jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}


def test_argon2id_with_asvs_parameters_verifies_and_refuses():
    async def scenario():
        hasher = AsyncPasswordHasher(workers=1)
        digest = await hasher.hash("Espace-2026!ok")
        assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await hasher.verify(digest, "Espace-2026!ok")
        assert not await hasher.verify(digest, "espace-2026!ok")
        assert not await hasher.verify("not a hash", "x")
        hasher.close()

    asyncio.run(scenario())
