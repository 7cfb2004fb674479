"""Log-in and sessions: access tokens, refresh-token families, brute-force throttling, and the
terms of use the member has to accept again when they change.

- A log-in opens a session *family* and answers a short-lived access token (JWT, `sid` = the
  family id) and an opaque refresh token (256 random bits, only its SHA-256 kept).
- A refresh spends the token and gives a new one in the same family; a spent token presented
  again revokes the family (see identity.domain.sessions).
- Log-in attempts are throttled per identifier as typed, known or unknown alike (see
  identity.domain.login_throttle); the throttle key is an HMAC of the normalised identifier.

Nothing secret (password, token, hash, identifier) goes to logs, spans or exception texts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, or_, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import select

from identity.adapters.tables import Account, LoginThrottle, Member, RefreshToken, SessionFamily
from identity.domain import login_throttle
from identity.domain.login_throttle import ThrottlePolicy, ThrottleState
from identity.domain.sessions import Family, PresentedToken, RefreshOutcome, family_expiry, judge_refresh
from identity.domain.sessions import session_usable, token_expiry
from identity.domain.tokens import new_link_token, token_hash
from identity.service_layer.accounts import Identity
from identity.service_layer.errors import INVALID_CREDENTIALS, account_not_activated, too_many_attempts
from shared.platform.problems import ProblemError, field_error

log = logging.getLogger(__name__)

LOGIN_SCOPE = "login"


def _now() -> datetime:
    return datetime.now(UTC)


# -- problems -----------------------------------------------------------------------------------


_REFRESH_PROBLEMS = {
    RefreshOutcome.UNKNOWN: ("Session invalide", "Votre session n'est pas valide. Reconnectez-vous."),
    RefreshOutcome.EXPIRED: ("Session expirée", "Votre session a expiré. Reconnectez-vous."),
    RefreshOutcome.REVOKED: ("Session terminée", "Votre session a été fermée. Reconnectez-vous."),
    RefreshOutcome.REUSED: (
        "Session terminée par sécurité",
        "Ce jeton de session avait déjà servi : par sécurité, la session a été fermée sur tous les appareils "
        "qui l'utilisaient. Reconnectez-vous.",
    ),
}


def refresh_problem(outcome: RefreshOutcome) -> ProblemError:
    title, detail = _REFRESH_PROBLEMS[outcome]
    return ProblemError(401, outcome.value, title, detail, headers={"WWW-Authenticate": "Bearer"})


def session_revoked() -> ProblemError:
    return ProblemError(
        401,
        "session_revoked",
        "Session terminée",
        "Votre session a été fermée. Reconnectez-vous.",
        headers={"WWW-Authenticate": "Bearer"},
    )


# -- throttling ---------------------------------------------------------------------------------


def throttle_policy(identity: Identity) -> ThrottlePolicy:
    s = identity.settings
    return ThrottlePolicy(
        free_failures=s.login_free_failures,
        max_delay_s=s.login_max_delay_seconds,
        window_s=3600,
        window_cap=s.login_hourly_failure_cap,
        memory_s=s.login_failure_memory_hours * 3600,
    )


def _throttle_secret(identity: Identity) -> bytes:
    configured = identity.settings.login_throttle_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    # Derived (one-way) from the signing key, so every replica agrees without a new secret.
    raw = identity.keys.keys[0].private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(b"espace-identity-login-throttle\x00" + raw).digest()


def normalise_identifier(identifier: str) -> str:
    return unicodedata.normalize("NFKC", identifier).strip().casefold()


def throttle_key(identity: Identity, scope: str, identifier: str) -> bytes:
    """HMAC of scope + normalised identifier: the table never holds what was typed."""
    message = f"{scope}\x00{normalise_identifier(identifier)}".encode()
    return hmac.new(_throttle_secret(identity), message, hashlib.sha256).digest()


def _state(row: LoginThrottle) -> ThrottleState:
    return ThrottleState(
        consecutive_failures=row.consecutive_failures,
        last_failure_at=row.last_failure_at,
        window_started_at=row.window_started_at,
        window_failures=row.window_failures,
        blocked_until=row.blocked_until,
    )


def _store(row: LoginThrottle, state: ThrottleState) -> None:
    row.consecutive_failures = state.consecutive_failures
    row.last_failure_at = state.last_failure_at
    row.window_started_at = state.window_started_at
    row.window_failures = state.window_failures
    row.blocked_until = state.blocked_until


async def _locked_throttle(session, key: bytes) -> LoginThrottle:
    await session.execute(pg_insert(LoginThrottle).values(key_hash=key).on_conflict_do_nothing())
    return (await session.exec(select(LoginThrottle).where(LoginThrottle.key_hash == key).with_for_update())).one()


async def throttle_gate(identity: Identity, key: bytes, then=None):
    """Raise 429 while the key is blocked; otherwise count this attempt as a failure up front
    (so parallel guesses are counted as they start). `throttle_passed` takes it back.
    `then(session)`, when given, runs in the same transaction once the attempt is let through
    (the log-in's account lookup: one transaction less per log-in); its result is returned."""
    now = _now()
    result = None
    async with identity.db.transaction() as session:
        row = await _locked_throttle(session, key)
        state = _state(row)
        wait = login_throttle.retry_after(state, now)
        if not wait:
            _store(row, login_throttle.record_failure(throttle_policy(identity), state, now))
            session.add(row)
            if then is not None:
                result = await then(session)
    if wait:
        raise too_many_attempts(wait, hint="Si vous avez oublié votre mot de passe, vous pouvez le réinitialiser.")
    return result


async def throttle_passed(session, key: bytes) -> None:
    """The attempt counted by `throttle_gate` succeeded (inside the caller's transaction)."""
    row = (await session.exec(select(LoginThrottle).where(LoginThrottle.key_hash == key).with_for_update())).first()
    if row is not None:
        _store(row, login_throttle.after_success(_state(row)))
        session.add(row)


async def clear_throttles(identity: Identity, session, scope: str, identifiers: list[str]) -> None:
    """Forget the failures on these identifiers (after a password reset, say)."""
    keys = [throttle_key(identity, scope, i) for i in identifiers if i]
    if keys:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.key_hash.in_(keys)))


# -- log-in -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    terms_acceptance_required: bool
    terms_version: str


async def log_in(identity: Identity, identifier: str, password: str) -> SessionTokens:
    """Membership number or contract number, and the password.

    Unknown identifier or wrong password: the same 401 after the same argon2 work; a throttled
    identifier: the same 429 whether it exists or not, with no password check at all."""
    identifier = identifier.strip()
    key = throttle_key(identity, LOGIN_SCOPE, identifier)

    async def accounts(session):
        return (
            await session.exec(
                select(Account, Member)
                .join(Member, Member.id == Account.member_id)
                .where(or_(Member.membership_number == identifier, Member.contract_number == identifier))
                .order_by(Member.membership_number != identifier)  # an exact membership number first
                .limit(5)
            )
        ).all()

    rows = await throttle_gate(identity, key, then=accounts)
    if not rows:
        await identity.hasher.verify_dummy(password)
        raise INVALID_CREDENTIALS
    for account, member in rows:
        if not await identity.hasher.verify(account.password_hash, password):
            continue
        if account.status != "active":
            async with identity.db.transaction() as session:
                await throttle_passed(session, key)
            raise account_not_activated()
        if identity.hasher.needs_rehash(account.password_hash):
            await _rehash(identity, account.id, password)
        async with identity.db.transaction() as session:
            await throttle_passed(session, key)
            return await open_session(identity, session, account, member.id, _now())
    raise INVALID_CREDENTIALS


async def _rehash(identity: Identity, account_id: uuid.UUID, password: str) -> None:
    new_hash = await identity.hasher.hash(password)
    async with identity.db.transaction() as session:
        account = await session.get(Account, account_id)
        account.password_hash = new_hash
        session.add(account)


def _issue(identity: Identity, account: Account, member_id: uuid.UUID, family: SessionFamily, session, now: datetime):
    raw = new_link_token()
    idle_hours = identity.settings.refresh_token_idle_ttl_hours
    expires_at = token_expiry(family.expires_at, now, timedelta(hours=idle_hours) if idle_hours else None)
    session.add(RefreshToken(token_hash=token_hash(raw), family_id=family.id, created_at=now, expires_at=expires_at))
    ttl = identity.settings.access_token_ttl_seconds
    access = identity.keys.sign_access_token(
        account_id=account.id, member_id=member_id, ttl_seconds=ttl, session_id=family.id
    )
    current_terms = identity.settings.terms_version
    return SessionTokens(
        access_token=access,
        expires_in=ttl,
        refresh_token=raw,
        refresh_expires_in=max(0, int((expires_at - now).total_seconds())),
        session_id=family.id,
        terms_acceptance_required=account.terms_version != current_terms,
        terms_version=current_terms,
    )


async def open_session(identity: Identity, session, account: Account, member_id: uuid.UUID, now: datetime) -> SessionTokens:
    family = SessionFamily(
        id=uuid.uuid4(),
        account_id=account.id,
        created_at=now,
        expires_at=family_expiry(now, timedelta(days=identity.settings.refresh_token_absolute_ttl_days)),
        last_used_at=now,
    )
    session.add(family)
    await session.flush()
    log.info("session opened", extra={"account_id": str(account.id), "session_id": str(family.id)})
    return _issue(identity, account, member_id, family, session, now)


# -- refresh ------------------------------------------------------------------------------------


async def refresh(identity: Identity, raw_token: str) -> SessionTokens:
    """Spend a refresh token for a new access token and a new refresh token (same family)."""
    now = _now()
    tokens: SessionTokens | None = None
    async with identity.db.transaction() as session:
        presented = (
            await session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash(raw_token)).with_for_update())
        ).first()
        family = account = None
        if presented is not None:
            family = (
                await session.exec(select(SessionFamily).where(SessionFamily.id == presented.family_id).with_for_update())
            ).first()
            account = await session.get(Account, family.account_id) if family is not None else None
        outcome = judge_refresh(
            PresentedToken(presented.used_at, presented.expires_at) if presented is not None else None,
            Family(family.expires_at, family.revoked_at, account is not None and account.status == "active")
            if family is not None
            else None,
            now,
        )
        if outcome is RefreshOutcome.REUSED:
            family.revoked_at = now
            family.revoked_reason = "reuse_detected"
            session.add(family)
            log.warning(
                "refresh token replayed: session family revoked",
                extra={"account_id": str(family.account_id), "session_id": str(family.id)},
            )
        elif outcome is RefreshOutcome.ROTATE:
            presented.used_at = now
            family.last_used_at = now
            session.add_all([presented, family])
            tokens = _issue(identity, account, account.member_id, family, session, now)
    # Outside the transaction: a revocation for reuse must commit even though the answer is 401.
    if tokens is None:
        raise refresh_problem(outcome)
    return tokens


# -- log-out ------------------------------------------------------------------------------------


async def revoke_sessions(
    session, account_id: uuid.UUID, now: datetime, reason: str, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live family of the account (but `keep`), inside the caller's transaction."""
    statement = (
        update(SessionFamily)
        .where(SessionFamily.account_id == account_id, SessionFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    if keep is not None:
        statement = statement.where(SessionFamily.id != keep)
    result = await session.execute(statement)
    return result.rowcount or 0


async def log_out(identity: Identity, account_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
    """End the session the access token was issued in (idempotent)."""
    if session_id is None:
        return
    async with identity.db.transaction() as session:
        await session.execute(
            update(SessionFamily)
            .where(SessionFamily.id == session_id, SessionFamily.account_id == account_id, SessionFamily.revoked_at.is_(None))
            .values(revoked_at=_now(), revoked_reason="logout")
        )
    log.info("session closed", extra={"account_id": str(account_id), "session_id": str(session_id)})


async def log_out_everywhere(identity: Identity, account_id: uuid.UUID) -> int:
    async with identity.db.transaction() as session:
        count = await revoke_sessions(session, account_id, _now(), "logout_everywhere")
    log.info("all sessions closed", extra={"account_id": str(account_id), "sessions": count})
    return count


async def require_live_session(identity: Identity, account_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
    """For sensitive routes: the access token's session must not have been ended since.

    (Other services trust access tokens until they expire, at most 15 minutes.)"""
    if session_id is None:
        raise session_revoked()
    async with identity.db.transaction() as session:
        row = (
            await session.exec(
                select(SessionFamily, Account.status)
                .join(Account, Account.id == SessionFamily.account_id)
                .where(SessionFamily.id == session_id, SessionFamily.account_id == account_id)
            )
        ).first()
    family = Family(row[0].expires_at, row[0].revoked_at, row[1] == "active") if row is not None else None
    if not session_usable(family, _now()):
        raise session_revoked()


# -- terms of use -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermsAcceptance:
    terms_version: str
    accepted_at: datetime


async def accept_terms(identity: Identity, account_id: uuid.UUID, version: str) -> TermsAcceptance:
    current = identity.settings.terms_version
    if version.strip() != current:
        raise ProblemError(
            422,
            "validation_failed",
            "Certains champs ne sont pas valides",
            "Corrigez les champs signalés puis réessayez.",
            [
                field_error(
                    "version",
                    "terms_version_not_current",
                    f"Cette version des conditions générales d'utilisation n'est pas celle en vigueur ({current}).",
                )
            ],
        )
    now = _now()
    async with identity.db.transaction() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        if account is None:
            raise ProblemError(404, "account_not_found", "Compte introuvable")
        account.terms_version = current
        account.terms_accepted_at = now
        session.add(account)
    log.info("terms accepted", extra={"account_id": str(account_id), "terms_version": current})
    return TermsAcceptance(terms_version=current, accepted_at=now)


# -- housekeeping -------------------------------------------------------------------------------


async def purge_expired(identity: Identity, now: datetime | None = None) -> None:
    """Delete what can no longer serve: long-dead session families (with their tokens), throttle
    rows with nothing left to remember, reset links expired a day ago."""
    now = now or _now()
    policy = throttle_policy(identity)
    async with identity.db.transaction() as session:
        await session.execute(delete(SessionFamily).where(SessionFamily.expires_at < now - timedelta(days=7)))
        await session.execute(
            delete(LoginThrottle).where(
                or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
                or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < now - timedelta(seconds=policy.memory_s)),
                or_(LoginThrottle.window_started_at.is_(None), LoginThrottle.window_started_at < now - timedelta(seconds=policy.window_s)),
            )
        )
        await session.execute(
            text("DELETE FROM password_reset_tokens WHERE expires_at < :before"), {"before": now - timedelta(days=1)}
        )


async def housekeeping_loop(identity: Identity, every_s: float = 3600.0) -> None:
    while True:
        try:
            await purge_expired(identity)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # next round will try again
            log.warning("housekeeping failed", extra={"error_type": type(exc).__name__})
        await asyncio.sleep(every_s)
