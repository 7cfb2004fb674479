"""Refresh-token rotation rules (identity.domain.sessions), the `sid` claim, key rotation, and
the helpers of identity.service_layer.sessions that need no database."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from identity.adapters.signing import KeyRing
from identity.domain.sessions import (
    Family,
    PresentedToken,
    RefreshOutcome,
    family_expiry,
    judge_refresh,
    session_usable,
    token_expiry,
)
from identity.service_layer.errors import too_many_attempts
from identity.service_layer.sessions import normalise_identifier, refresh_problem, throttle_key
from shared.platform.auth import TokenVerifier
from shared.platform.problems import ProblemError

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)


def _token(used: bool = False, expires_at: datetime = LATER) -> PresentedToken:
    return PresentedToken(used_at=NOW - timedelta(minutes=1) if used else None, expires_at=expires_at)


def _family(revoked: bool = False, expires_at: datetime = LATER, active: bool = True) -> Family:
    return Family(expires_at=expires_at, revoked_at=NOW - timedelta(minutes=1) if revoked else None, account_active=active)


def test_a_fresh_token_of_a_live_family_rotates():
    assert judge_refresh(_token(), _family(), NOW) is RefreshOutcome.ROTATE


def test_an_unknown_token_is_invalid():
    assert judge_refresh(None, None, NOW) is RefreshOutcome.UNKNOWN


def test_a_spent_token_presented_again_is_reuse_and_revokes_the_family():
    assert judge_refresh(_token(used=True), _family(), NOW) is RefreshOutcome.REUSED


def test_once_the_family_is_revoked_even_its_newest_token_is_refused():
    assert judge_refresh(_token(), _family(revoked=True), NOW) is RefreshOutcome.REVOKED
    assert judge_refresh(_token(used=True), _family(revoked=True), NOW) is RefreshOutcome.REVOKED


def test_the_absolute_lifetime_holds_however_often_the_family_rotates():
    family = _family(expires_at=NOW + timedelta(days=30))
    # the newest token of a 30-day-old family, issued a second ago:
    fresh = PresentedToken(used_at=None, expires_at=token_expiry(family.expires_at, NOW + timedelta(days=30) - timedelta(seconds=1), None))
    assert judge_refresh(fresh, family, NOW + timedelta(days=30)) is RefreshOutcome.EXPIRED
    assert judge_refresh(fresh, family, NOW + timedelta(days=29)) is RefreshOutcome.ROTATE


def test_an_idle_token_expires_before_its_family():
    family = _family(expires_at=family_expiry(NOW, timedelta(days=30)))
    expires = token_expiry(family.expires_at, NOW, timedelta(hours=12))
    assert expires == NOW + timedelta(hours=12)
    assert judge_refresh(PresentedToken(None, expires), family, NOW + timedelta(hours=13)) is RefreshOutcome.EXPIRED
    # never beyond the family, idle or not
    assert token_expiry(family.expires_at, family.expires_at - timedelta(hours=1), timedelta(hours=12)) == family.expires_at
    assert token_expiry(family.expires_at, NOW, None) == family.expires_at


def test_a_token_of_an_account_no_longer_active_is_refused():
    assert judge_refresh(_token(), _family(active=False), NOW) is RefreshOutcome.REVOKED


def test_a_session_is_usable_only_while_live():
    assert session_usable(_family(), NOW)
    assert not session_usable(_family(revoked=True), NOW)
    assert not session_usable(_family(expires_at=NOW), NOW)
    assert not session_usable(None, NOW)


def test_refresh_problems_are_401_in_french_with_distinct_codes():
    codes = set()
    for outcome in (RefreshOutcome.UNKNOWN, RefreshOutcome.EXPIRED, RefreshOutcome.REVOKED, RefreshOutcome.REUSED):
        problem = refresh_problem(outcome)
        assert problem.status == 401 and problem.detail.endswith("Reconnectez-vous.")
        codes.add(problem.code)
    assert codes == {"refresh_token_invalid", "refresh_token_expired", "session_revoked", "refresh_token_reused"}


@pytest.mark.parametrize(("seconds", "text"), [(1, "1 seconde"), (32, "32 secondes"), (60, "1 minute"), (61, "2 minutes"), (900, "15 minutes")])
def test_too_many_attempts_says_when_to_retry_in_french_and_in_retry_after(seconds, text):
    problem = too_many_attempts(seconds)
    assert (problem.status, problem.code) == (429, "too_many_attempts")
    assert problem.headers == {"Retry-After": str(seconds)}
    assert f"Réessayez dans {text}." in problem.detail


def _identity(key: str | None = None, ring: KeyRing | None = None):
    settings = SimpleNamespace(login_throttle_key=SecretStr(key) if key else None)
    return SimpleNamespace(settings=settings, keys=ring or KeyRing.load([]))


def test_throttle_keys_follow_the_normalised_identifier_and_reveal_nothing():
    identity = _identity("k" * 32)
    assert normalise_identifier(" C２０２４ABc ") == "c2024abc"
    key = throttle_key(identity, "login", "100000001")
    assert key == throttle_key(identity, "login", " 100000001 ")
    assert key != throttle_key(identity, "login", "100000002")
    assert key != throttle_key(identity, "password-change", "100000001")
    assert b"100000001" not in key and len(key) == 32
    # another key, other throttle keys: the table cannot be matched against identifiers offline
    assert key != throttle_key(_identity("j" * 32), "login", "100000001")


def test_without_a_configured_key_the_throttle_key_derives_from_the_signing_key():
    ring = KeyRing.load([])
    assert throttle_key(_identity(ring=ring), "login", "1") == throttle_key(_identity(ring=ring), "login", "1")
    assert throttle_key(_identity(ring=ring), "login", "1") != throttle_key(_identity(), "login", "1")


def test_access_tokens_carry_the_session_id():
    ring = KeyRing.load([])
    sid = uuid.uuid4()
    token = ring.sign_access_token(account_id=uuid.uuid4(), member_id=uuid.uuid4(), ttl_seconds=60, session_id=sid)
    assert jwt.decode(token, options={"verify_signature": False})["sid"] == str(sid)
    asyncio.run(TokenVerifier(ring).verify(token))


def _pem(path, key: Ed25519PrivateKey):
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def test_a_token_signed_by_the_old_key_still_verifies_after_a_key_rotation(tmp_path):
    old = _pem(tmp_path / "old.pem", Ed25519PrivateKey.generate())
    new = _pem(tmp_path / "new.pem", Ed25519PrivateKey.generate())
    before = KeyRing.load([old])
    issued_before = before.sign_access_token(account_id=uuid.uuid4(), member_id=uuid.uuid4(), ttl_seconds=600)

    rotated = KeyRing.load([new, old])  # IDENTITY_JWT_PRIVATE_KEY_FILES=new.pem,old.pem
    assert asyncio.run(TokenVerifier(rotated).verify(issued_before))
    issued_after = rotated.sign_access_token(account_id=uuid.uuid4(), member_id=uuid.uuid4(), ttl_seconds=600)
    assert jwt.get_unverified_header(issued_after)["kid"] == rotated.keys[0].kid != before.keys[0].kid
    assert asyncio.run(TokenVerifier(rotated).verify(issued_after))
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {rotated.keys[0].kid, before.keys[0].kid}

    retired = KeyRing.load([new])  # once old tokens have expired, the old key goes
    with pytest.raises(ProblemError):
        asyncio.run(TokenVerifier(retired).verify(issued_before))
    assert asyncio.run(TokenVerifier(retired).verify(issued_after))
