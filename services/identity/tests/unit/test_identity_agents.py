import asyncio
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.exceptions import InvalidTag

from identity.adapters.secret_box import SecretBox
from identity.adapters.signing import KeyRing
from identity.domain import totp
from shared.platform.auth import TokenVerifier
from shared.platform.problems import ProblemError

RFC_SECRET = b"12345678901234567890"


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
     (2000000000, "69279037"), (20000000000, "65353130")],
)
def test_hotp_matches_the_rfc_6238_sha1_test_vectors(unix_time, expected):
    assert totp.hotp(RFC_SECRET, totp.step_at(unix_time), digits=8) == expected


def test_a_code_matches_its_step_and_one_either_side_and_is_good_once():
    secret = totp.new_secret()
    now = 1_800_000_000.0
    code = totp.code_at(secret, now)
    step = totp.step_at(now)
    assert totp.matching_step(secret, code, now) == step
    assert totp.matching_step(secret, code, now + totp.PERIOD_S) == step
    assert totp.matching_step(secret, code, now - totp.PERIOD_S) == step
    assert totp.matching_step(secret, code, now + 2 * totp.PERIOD_S) is None
    # Once used, neither it nor an older one opens again.
    assert totp.matching_step(secret, code, now, after_step=step) is None
    assert totp.matching_step(secret, totp.code_at(secret, now + totp.PERIOD_S), now, after_step=step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_never_match(code):
    assert totp.matching_step(totp.new_secret(), code, 1_800_000_000.0) is None


def test_the_provisioning_uri_carries_the_secret_issuer_and_parameters():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "agent.dupont@mutuelle.example", "Espace back-office")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parsed.path == "/Espace%20back-office:agent.dupont@mutuelle.example"
    query = parse_qs(parsed.query)
    assert query == {"secret": [secret], "issuer": ["Espace back-office"], "algorithm": ["SHA1"], "digits": ["6"],
                     "period": ["30"]}
    assert len(secret) == 32  # 160 bits in base32


def test_sealed_secrets_open_only_with_the_key_and_for_the_same_agent():
    box, owner = SecretBox(b"key one"), uuid.uuid4()
    sealed = box.seal("JBSWY3DPEHPK3PXP", owner)
    assert b"JBSWY3DPEHPK3PXP" not in sealed
    assert box.open(sealed, owner) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidTag):
        SecretBox(b"key two").open(sealed, owner)
    with pytest.raises(InvalidTag):
        box.open(sealed, uuid.uuid4())


def test_agent_tokens_and_member_tokens_are_never_taken_for_one_another():
    ring = KeyRing.load([])
    verifier = TokenVerifier(ring)
    agent_id = uuid.uuid4()
    agent_token = ring.sign_agent_token(agent_id=agent_id, ttl_seconds=60)
    member_token = ring.sign_access_token(account_id=uuid.uuid4(), member_id=uuid.uuid4(), ttl_seconds=60)
    assert asyncio.run(verifier.verify_agent(agent_token)).agent_id == agent_id
    asyncio.run(verifier.verify(member_token))
    with pytest.raises(ProblemError):
        asyncio.run(verifier.verify(agent_token))
    with pytest.raises(ProblemError):
        asyncio.run(verifier.verify_agent(member_token))
