"""Management-centre agents: accounts made by a command, a password set from a one-time link,
log-in with e-mail + password + TOTP code (RFC 6238), and sessions like members' (a family per
log-in, rotating refresh tokens, a replay ends the family) in tables of their own.

Agents get tokens with the back-office audience and `role: agent` (signing.sign_agent_token):
no member route takes them, and no back-office route takes a member's.

The members' rules are reused as they are: the password policy (identity.domain.passwords),
argon2id off the event loop, the per-identifier log-in throttle (own scope), single-use links
(SHA-256 only kept, identity.domain.tokens.link_refusal), refresh judgement
(identity.domain.sessions.judge_refresh).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from identity.adapters.secret_box import SecretBox
from identity.adapters.tables import Agent, AgentPasswordToken, AgentRefreshToken, AgentSessionFamily
from identity.domain import totp
from identity.domain.passwords import password_violations
from identity.domain.sessions import Family, PresentedToken, RefreshOutcome, judge_refresh, session_usable
from identity.domain.tokens import link_refusal, new_link_token, token_hash
from identity.service_layer import sessions
from identity.service_layer.accounts import Identity
from identity.service_layer.sessions import normalise_identifier, refresh_problem, session_revoked
from shared.platform.db import driver_connection
from shared.platform.problems import ProblemError, field_error

log = logging.getLogger(__name__)

AGENT_LOGIN_SCOPE = "agent-login"


def _now() -> datetime:
    return datetime.now(UTC)


def email_key(email: str) -> str:
    return normalise_identifier(email)


# -- problems -----------------------------------------------------------------------------------

AGENT_INVALID_CREDENTIALS = ProblemError(
    401,
    "invalid_credentials",
    "Identifiants incorrects",
    "E-mail, mot de passe ou code de vérification incorrect.",
    headers={"WWW-Authenticate": "Bearer"},
)

_LINK_PROBLEMS = {
    "unknown": (400, "Lien invalide", "Ce lien de création de mot de passe n'est pas valide."),
    "used": (409, "Lien déjà utilisé", "Ce lien a déjà servi. Demandez un nouveau lien à votre administrateur."),
    "expired": (410, "Lien expiré", "Ce lien a expiré. Demandez un nouveau lien à votre administrateur."),
    "revoked": (410, "Lien remplacé", "Un lien plus récent a été émis : utilisez le dernier reçu."),
}


def link_problem(refusal: str) -> ProblemError:
    status, title, detail = _LINK_PROBLEMS[refusal]
    return ProblemError(status, f"agent_password_token_{refusal}", title, detail)


# -- the TOTP secrets' key ----------------------------------------------------------------------


def secret_box(identity: Identity) -> SecretBox:
    configured = identity.settings.agent_totp_key
    if configured is not None and configured.get_secret_value():
        return SecretBox(configured.get_secret_value().encode())
    raw = identity.keys.keys[0].private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return SecretBox(hashlib.sha256(b"espace-identity-agent-totp-key\x00" + raw).digest())


# -- creation (command line) --------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordLink:
    agent_id: uuid.UUID
    created: bool
    url: str
    expires_at: datetime


async def create_agent(db, settings, email: str, name: str) -> PasswordLink:
    """A new agent (pending until the password is set), or, for an e-mail already known, a new
    password-setting link for it (older links revoked): that is also how an agent who lost the
    password or the authenticator is let back in (the link re-enrols the second factor)."""
    email, name = email.strip(), " ".join(name.split())
    if "@" not in email or not name:
        raise ValueError("an e-mail address and a name are needed")
    now = _now()
    raw = new_link_token()
    expires_at = now + timedelta(hours=settings.agent_password_link_ttl_hours)
    created = False
    try:
        async with db.transaction() as session:
            agent = (
                await session.exec(select(Agent).where(Agent.email_key == email_key(email)).with_for_update())
            ).first()
            if agent is None:
                agent = Agent(id=uuid.uuid4(), email=email, email_key=email_key(email), name=name, status="pending",
                              created_at=now)
                session.add(agent)
                await session.flush()
                created = True
            else:
                agent.name = name
                session.add(agent)
                await session.execute(
                    update(AgentPasswordToken)
                    .where(AgentPasswordToken.agent_id == agent.id, AgentPasswordToken.used_at.is_(None),
                           AgentPasswordToken.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            session.add(AgentPasswordToken(token_hash=token_hash(raw), agent_id=agent.id, created_at=now,
                                           expires_at=expires_at))
            agent_id = agent.id
    except IntegrityError as exc:  # the same e-mail created twice at once
        raise ValueError("this agent is being created by another command; run it again") from exc
    log.info("agent password link issued", extra={"agent_id": str(agent_id), "agent_created": created})
    url = f"{settings.public_base_url.rstrip('/')}/agent/mot-de-passe?token={raw}"
    return PasswordLink(agent_id=agent_id, created=created, url=url, expires_at=expires_at)


# -- password and second factor from the link ---------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    agent_id: uuid.UUID
    email: str
    totp_secret: str
    totp_uri: str


def _judge_link(link: AgentPasswordToken | None, agent: Agent | None, now: datetime) -> None:
    refusal = "unknown" if agent is None or agent.status == "disabled" else link_refusal(link, now)
    if refusal:
        raise link_problem(refusal)


async def set_password(identity: Identity, token: str, password: str, confirmation: str) -> Enrolment:
    """Spend the link: the password (members' policy, argon2id) and a new TOTP secret, whose
    otpauth:// URI is answered once, here, for the agent's authenticator app. Every session the
    agent had is ended (a new link is also the way back in after a loss)."""
    digest = token_hash(token)
    async with identity.db.transaction() as session:
        link = (await session.exec(select(AgentPasswordToken).where(AgentPasswordToken.token_hash == digest))).first()
        agent = await session.get(Agent, link.agent_id) if link is not None else None
    _judge_link(link, agent, _now())
    errors = [field_error("password", v.code, v.message) for v in password_violations(password, last_name=agent.name)]
    local_part = agent.email.split("@", 1)[0].casefold()
    if len(local_part) >= 4 and local_part in password.casefold():
        errors.append(field_error("password", "password_contains_email", "Le mot de passe ne doit pas contenir votre e-mail."))
    if password != confirmation:
        errors.append(field_error("password_confirmation", "password_mismatch",
                                  "Les deux mots de passe ne sont pas identiques."))
    if errors:
        raise ProblemError(422, "validation_failed", "Certains champs ne sont pas valides",
                           "Corrigez les champs signalés puis réessayez.", errors)
    new_hash = await identity.hasher.hash(password)
    secret = totp.new_secret()
    now = _now()
    async with identity.db.transaction() as session:
        # Again under lock: two submissions of the same link race, one wins.
        link = (
            await session.exec(select(AgentPasswordToken).where(AgentPasswordToken.token_hash == digest).with_for_update())
        ).first()
        agent = await session.get(Agent, link.agent_id, with_for_update=True) if link is not None else None
        _judge_link(link, agent, now)
        link.used_at = now
        agent.password_hash = new_hash
        agent.totp_secret_sealed = secret_box(identity).seal(secret, agent.id)
        agent.totp_last_step = None
        agent.status = "active"
        agent.activated_at = agent.activated_at or now
        session.add_all([link, agent])
        await session.execute(
            update(AgentSessionFamily)
            .where(AgentSessionFamily.agent_id == agent.id, AgentSessionFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="password_reset")
        )
        await sessions.clear_throttles(identity, session, AGENT_LOGIN_SCOPE, [agent.email])
        email = agent.email
    log.info("agent password set, second factor enrolled", extra={"agent_id": str(agent.id)})
    return Enrolment(agent.id, email, secret, totp.provisioning_uri(secret, email, identity.settings.agent_totp_issuer))


# -- log-in -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID


async def log_in(identity: Identity, email: str, password: str, code: str) -> AgentTokens:
    """E-mail, password and the authenticator's current code. Whatever is wrong (unknown e-mail,
    wrong password, wrong or replayed code, link never used) gets the same 401 after the same
    argon2 work; throttled like members' log-ins, per e-mail as typed (scope agent-login)."""
    key = sessions.throttle_key(identity, AGENT_LOGIN_SCOPE, email)
    await sessions.throttle_gate(identity, key)
    async with identity.db.transaction() as session:
        agent = (await session.exec(select(Agent).where(Agent.email_key == email_key(email)))).first()
    if agent is None or agent.status != "active" or agent.password_hash is None:
        await identity.hasher.verify_dummy(password)
        raise AGENT_INVALID_CREDENTIALS
    if not await identity.hasher.verify(agent.password_hash, password):
        raise AGENT_INVALID_CREDENTIALS
    try:
        secret = secret_box(identity).open(agent.totp_secret_sealed, agent.id)
    except InvalidTag:
        # The key changed (signing key rotated without IDENTITY_AGENT_TOTP_KEY): re-enrol.
        log.warning("agent totp secret cannot be decrypted: a new link is needed", extra={"agent_id": str(agent.id)})
        raise AGENT_INVALID_CREDENTIALS from None
    step = totp.matching_step(secret, code, time.time(), after_step=agent.totp_last_step)
    if step is None:
        raise AGENT_INVALID_CREDENTIALS
    if identity.hasher.needs_rehash(agent.password_hash):
        new_hash = await identity.hasher.hash(password)
    else:
        new_hash = None
    now = _now()
    async with identity.db.transaction() as session:
        # The step is taken under the row lock: the same code sent twice at once opens one session.
        result = await session.execute(
            update(Agent)
            .where(Agent.id == agent.id, Agent.status == "active",
                   (Agent.totp_last_step.is_(None)) | (Agent.totp_last_step < step))
            .values(totp_last_step=step, **({"password_hash": new_hash} if new_hash else {}))
        )
        if not result.rowcount:
            raise AGENT_INVALID_CREDENTIALS
        await sessions.throttle_passed(await driver_connection(session), key)
        family = AgentSessionFamily(
            id=uuid.uuid4(),
            agent_id=agent.id,
            created_at=now,
            expires_at=now + timedelta(hours=identity.settings.agent_session_ttl_hours),
            last_used_at=now,
        )
        session.add(family)
        await session.flush()
        tokens = _issue(identity, agent.id, family, session, now)
    log.info("agent session opened", extra={"agent_id": str(agent.id), "session_id": str(family.id)})
    return tokens


def _issue(identity: Identity, agent_id: uuid.UUID, family: AgentSessionFamily, session, now: datetime) -> AgentTokens:
    raw = new_link_token()
    session.add(AgentRefreshToken(token_hash=token_hash(raw), family_id=family.id, created_at=now,
                                  expires_at=family.expires_at))
    ttl = identity.settings.access_token_ttl_seconds
    return AgentTokens(
        access_token=identity.keys.sign_agent_token(agent_id=agent_id, ttl_seconds=ttl, session_id=family.id),
        expires_in=ttl,
        refresh_token=raw,
        refresh_expires_in=max(0, int((family.expires_at - now).total_seconds())),
        session_id=family.id,
    )


async def refresh(identity: Identity, raw_token: str) -> AgentTokens:
    now = _now()
    tokens: AgentTokens | None = None
    async with identity.db.transaction() as session:
        presented = (
            await session.exec(
                select(AgentRefreshToken).where(AgentRefreshToken.token_hash == token_hash(raw_token)).with_for_update()
            )
        ).first()
        family = agent = None
        if presented is not None:
            family = (
                await session.exec(
                    select(AgentSessionFamily).where(AgentSessionFamily.id == presented.family_id).with_for_update()
                )
            ).first()
            agent = await session.get(Agent, family.agent_id) if family is not None else None
        outcome = judge_refresh(
            PresentedToken(presented.used_at, presented.expires_at) if presented is not None else None,
            Family(family.expires_at, family.revoked_at, agent is not None and agent.status == "active")
            if family is not None
            else None,
            now,
        )
        if outcome is RefreshOutcome.REUSED:
            family.revoked_at = now
            family.revoked_reason = "reuse_detected"
            session.add(family)
            log.warning("agent refresh token replayed: session revoked",
                        extra={"agent_id": str(family.agent_id), "session_id": str(family.id)})
        elif outcome is RefreshOutcome.ROTATE:
            presented.used_at = now
            family.last_used_at = now
            session.add_all([presented, family])
            tokens = _issue(identity, agent.id, family, session, now)
    if tokens is None:  # outside the transaction: a revocation for reuse commits
        raise refresh_problem(outcome)
    return tokens


async def log_out(identity: Identity, agent_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
    if session_id is None:
        return
    async with identity.db.transaction() as session:
        await session.execute(
            update(AgentSessionFamily)
            .where(AgentSessionFamily.id == session_id, AgentSessionFamily.agent_id == agent_id,
                   AgentSessionFamily.revoked_at.is_(None))
            .values(revoked_at=_now(), revoked_reason="logout")
        )
    log.info("agent session closed", extra={"agent_id": str(agent_id), "session_id": str(session_id)})


async def agent_view(identity: Identity, agent_id: uuid.UUID, session_id: uuid.UUID | None) -> Agent:
    """The agent behind a token whose session is still open (a log-out ends it here at once)."""
    async with identity.db.transaction() as session:
        row = None
        if session_id is not None:
            row = (
                await session.exec(
                    select(AgentSessionFamily, Agent)
                    .join(Agent, Agent.id == AgentSessionFamily.agent_id)
                    .where(AgentSessionFamily.id == session_id, AgentSessionFamily.agent_id == agent_id)
                )
            ).first()
    if row is None:
        raise session_revoked()
    family, agent = row
    if not session_usable(Family(family.expires_at, family.revoked_at, agent.status == "active"), _now()):
        raise session_revoked()
    return agent
