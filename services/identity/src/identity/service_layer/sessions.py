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
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, or_, text, update
from sqlmodel import select

from identity.adapters.tables import Account, LoginThrottle, SessionFamily
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


# The log-in's statements, on asyncpg directly (identity.direct): prepared once per connection, no
# ORM flush or session around them. The rules stay in identity.domain.login_throttle.
_THROTTLE_FIELDS = "consecutive_failures, last_failure_at, window_started_at, window_failures, blocked_until"
# Creates the row when needed and locks it in one statement: ON CONFLICT DO UPDATE takes the row
# lock as FOR UPDATE would, waits for a concurrent attempt, and returns the row as it left it.
_LOCK_OR_CREATE = (
    "INSERT INTO login_throttles (key_hash) VALUES ($1) ON CONFLICT (key_hash) DO UPDATE SET key_hash = EXCLUDED.key_hash"
    f" RETURNING {_THROTTLE_FIELDS}"
)
_LOCK = f"SELECT {_THROTTLE_FIELDS} FROM login_throttles WHERE key_hash = $1 FOR UPDATE"
# $1 the key, $2–$6 a ThrottleState's fields in order; other statements may follow it in a WITH.
_STORE = (
    "UPDATE login_throttles SET consecutive_failures = $2, last_failure_at = $3, window_started_at = $4,"
    " window_failures = $5, blocked_until = $6 WHERE key_hash = $1"
)


def _stored(key: bytes, state: ThrottleState) -> tuple:
    return (key, *astuple(state))


async def throttle_gate(identity: Identity, key: bytes, then: str | None = None, *args):
    """Raise 429 while the key is blocked; otherwise count this attempt as a failure up front
    (so parallel guesses are counted as they start). `throttle_passed` takes it back.
    `then`, when given, is a query (parameters from $7: `args`) run in the same statement as the
    count once the attempt is let through (the log-in's account lookup: one transaction and
    one round trip less per log-in); its rows are returned."""
    now = _now()
    rows = None
    async with identity.direct.transaction() as conn:
        state = ThrottleState(*await conn.fetchrow(_LOCK_OR_CREATE, key))
        wait = login_throttle.retry_after(state, now)
        if not wait:
            counted = _stored(key, login_throttle.record_failure(throttle_policy(identity), state, now))
            if then is None:
                await conn.execute(_STORE, *counted)
            else:
                rows = await conn.fetch(f"WITH counted AS ({_STORE}) {then}", *counted, *args)
    if wait:
        raise too_many_attempts(wait, hint="Si vous avez oublié votre mot de passe, vous pouvez le réinitialiser.")
    return rows


async def _passed(conn: asyncpg.Connection, key: bytes) -> tuple:
    """`_STORE`'s parameters once the attempt counted by `throttle_gate` is taken back; the row
    stays locked until the caller's transaction ends (none left, purged meanwhile: nothing to do)."""
    row = await conn.fetchrow(_LOCK, key)
    return _stored(key, login_throttle.after_success(ThrottleState(*row) if row is not None else ThrottleState()))


async def throttle_passed(conn: asyncpg.Connection, key: bytes) -> None:
    """The attempt counted by `throttle_gate` succeeded (inside the caller's transaction: an ORM
    session's, through shared.platform.db.driver_connection, or identity.direct's)."""
    await conn.execute(_STORE, *await _passed(conn, key))


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


# Exact membership number first; at most 5 accounts share a contract number.
_ACCOUNTS = (
    "SELECT a.id, a.password_hash, a.status, a.terms_version, m.id FROM accounts a JOIN members m ON m.id = a.member_id"
    " WHERE m.membership_number = $7 OR m.contract_number = $7 ORDER BY m.membership_number <> $7 LIMIT 5"
)


async def log_in(identity: Identity, identifier: str, password: str) -> SessionTokens:
    """Membership number or contract number, and the password.

    Unknown identifier or wrong password: the same 401 after the same argon2 work; a throttled
    identifier: the same 429 whether it exists or not, with no password check at all."""
    identifier = identifier.strip()
    key = throttle_key(identity, LOGIN_SCOPE, identifier)
    rows = await throttle_gate(identity, key, _ACCOUNTS, identifier)
    if not rows:
        await identity.hasher.verify_dummy(password)
        raise INVALID_CREDENTIALS
    for account_id, password_hash, status, terms_version, member_id in rows:
        if not await identity.hasher.verify(password_hash, password):
            continue
        if status != "active":
            async with identity.direct.transaction() as conn:
                await throttle_passed(conn, key)
            raise account_not_activated()
        if identity.hasher.needs_rehash(password_hash):
            new_hash = await identity.hasher.hash(password)
            await identity.direct.pool.execute("UPDATE accounts SET password_hash = $2 WHERE id = $1", account_id, new_hash)
        return await _open_session(identity, key, account_id, member_id, terms_version, _now())
    raise INVALID_CREDENTIALS


# The throttle's success ($1–$6), the family ($7–$10) and its first token ($11–$12), in one
# statement (after `_LOCK`) and one transaction.
_OPEN_SESSION = (
    f"WITH passed AS ({_STORE}), family AS ("
    "INSERT INTO session_families (id, account_id, created_at, expires_at, last_used_at) VALUES ($7, $8, $9, $10, $9)"
    " RETURNING id)"
    " INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) SELECT $11, id, $9, $12 FROM family"
)


async def _open_session(
    identity: Identity, key: bytes, account_id: uuid.UUID, member_id: uuid.UUID, terms_version: str, now: datetime
) -> SessionTokens:
    family_id = uuid.uuid4()
    family_expires_at = family_expiry(now, timedelta(days=identity.settings.refresh_token_absolute_ttl_days))
    tokens, raw_hash, expires_at = _issue(identity, account_id, member_id, terms_version, family_id, family_expires_at, now)
    async with identity.direct.transaction() as conn:
        passed = await _passed(conn, key)
        await conn.execute(_OPEN_SESSION, *passed, family_id, account_id, now, family_expires_at, raw_hash, expires_at)
    log.info("session opened", extra={"account_id": str(account_id), "session_id": str(family_id)})
    return tokens


def _issue(
    identity: Identity,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    terms_version: str,
    family_id: uuid.UUID,
    family_expires_at: datetime,
    now: datetime,
) -> tuple[SessionTokens, bytes, datetime]:
    """A new pair of tokens in the family; also the refresh token's hash and expiry, to store."""
    raw = new_link_token()
    idle_hours = identity.settings.refresh_token_idle_ttl_hours
    expires_at = token_expiry(family_expires_at, now, timedelta(hours=idle_hours) if idle_hours else None)
    ttl = identity.settings.access_token_ttl_seconds
    access = identity.keys.sign_access_token(account_id=account_id, member_id=member_id, ttl_seconds=ttl, session_id=family_id)
    current_terms = identity.settings.terms_version
    tokens = SessionTokens(
        access_token=access,
        expires_in=ttl,
        refresh_token=raw,
        refresh_expires_in=max(0, int((expires_at - now).total_seconds())),
        session_id=family_id,
        terms_acceptance_required=terms_version != current_terms,
        terms_version=current_terms,
    )
    return tokens, token_hash(raw), expires_at


# -- refresh ------------------------------------------------------------------------------------

# The presented token and its family locked (a family always exists: refresh_tokens.family_id
# references it, ON DELETE CASCADE); the account read as it is.
_PRESENTED = (
    "SELECT t.used_at, t.expires_at, f.id, f.account_id, f.expires_at, f.revoked_at, a.status, a.member_id,"
    " a.terms_version FROM refresh_tokens t JOIN session_families f ON f.id = t.family_id"
    " LEFT JOIN accounts a ON a.id = f.account_id WHERE t.token_hash = $1 FOR UPDATE OF t, f"
)
_REVOKE_FOR_REUSE = "UPDATE session_families SET revoked_at = $2, revoked_reason = 'reuse_detected' WHERE id = $1"
# Spend the presented token ($1), touch the family ($3) and store the next token ($4, $5).
_ROTATE = (
    "WITH spent AS (UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1),"
    " touched AS (UPDATE session_families SET last_used_at = $2 WHERE id = $3)"
    " INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($4, $3, $2, $5)"
)


async def refresh(identity: Identity, raw_token: str) -> SessionTokens:
    """Spend a refresh token for a new access token and a new refresh token (same family)."""
    now = _now()
    tokens: SessionTokens | None = None
    presented_hash = token_hash(raw_token)
    async with identity.direct.transaction() as conn:
        row = await conn.fetchrow(_PRESENTED, presented_hash)
        if row is None:
            outcome = judge_refresh(None, None, now)
        else:
            used_at, expires_at, family_id, account_id, family_expires_at, revoked_at, status, member_id, terms = row
            outcome = judge_refresh(
                PresentedToken(used_at, expires_at), Family(family_expires_at, revoked_at, status == "active"), now
            )
        if outcome is RefreshOutcome.REUSED:
            await conn.execute(_REVOKE_FOR_REUSE, family_id, now)
            log.warning(
                "refresh token replayed: session family revoked",
                extra={"account_id": str(account_id), "session_id": str(family_id)},
            )
        elif outcome is RefreshOutcome.ROTATE:
            tokens, next_hash, next_expires_at = _issue(
                identity, account_id, member_id, terms, family_id, family_expires_at, now
            )
            await conn.execute(_ROTATE, presented_hash, now, family_id, next_hash, next_expires_at)
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
