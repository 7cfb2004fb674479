"""Password recovery (a forgotten password, by a single-use e-mailed link) and password change
(a logged-in member who knows the current one).

Both set a new argon2id hash under the registration's password policy, end sessions (a reset
ends every session; a change ends every session but the one that made it), revoke pending reset
links, and publish PasswordChanged so the member is alerted by e-mail.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import or_, select

from identity.adapters.tables import Account, Member, PasswordResetToken
from identity.domain.passwords import password_violations
from identity.domain.tokens import link_refusal, new_link_token, token_hash
from identity.service_layer import links, sessions
from identity.service_layer.accounts import Identity
from shared.contracts.identity import PasswordChanged, PasswordResetRequested
from shared.platform.problems import FieldError, ProblemError, field_error

log = logging.getLogger(__name__)

PASSWORD_CHANGE_SCOPE = "password-change"


def _now() -> datetime:
    return datetime.now(UTC)


# -- problems -----------------------------------------------------------------------------------

_RESET_PROBLEMS = {
    "password_reset_token_unknown": (
        400,
        "Lien de réinitialisation invalide",
        "Ce lien de réinitialisation n'est pas valide. Demandez un nouveau lien depuis la page de connexion.",
    ),
    "password_reset_token_used": (
        409,
        "Lien déjà utilisé",
        "Ce lien de réinitialisation a déjà servi. Si vous n'avez pas pu changer votre mot de passe, demandez un nouveau lien.",
    ),
    "password_reset_token_expired": (
        410,
        "Lien expiré",
        "Ce lien de réinitialisation a expiré. Demandez un nouveau lien depuis la page de connexion.",
    ),
    "password_reset_token_revoked": (
        410,
        "Lien remplacé",
        "Un lien plus récent vous a été envoyé, ou votre mot de passe a changé depuis : utilisez le dernier e-mail reçu.",
    ),
}


def reset_problem(code: str) -> ProblemError:
    status, title, detail = _RESET_PROBLEMS[code]
    return ProblemError(status, code, title, detail)


def _invalid_fields(errors: list[FieldError]) -> ProblemError:
    return ProblemError(
        422, "validation_failed", "Certains champs ne sont pas valides", "Corrigez les champs signalés puis réessayez.", errors
    )


def current_password_incorrect() -> ProblemError:
    return ProblemError(
        403,
        "current_password_incorrect",
        "Mot de passe actuel incorrect",
        "Le mot de passe actuel saisi n'est pas le bon.",
        [field_error("current_password", "current_password_incorrect", "Le mot de passe actuel n'est pas correct.")],
    )


def new_password_errors(
    password: str, confirmation: str, member: Member, *, field: str, confirmation_field: str
) -> list[FieldError]:
    """The registration's policy (identity.domain.passwords), with the member's own data: the
    member is known here (a valid link or a session), so nothing is revealed by using it."""
    errors = [
        field_error(field, v.code, v.message)
        for v in password_violations(
            password,
            membership_number=member.membership_number,
            last_name=member.last_name,
            first_name=member.first_name,
            birth_date=member.birth_date,
        )
    ]
    if password != confirmation:
        errors.append(field_error(confirmation_field, "password_mismatch", "Les deux mots de passe ne sont pas identiques."))
    return errors


# -- forgotten password -------------------------------------------------------------------------


async def request_password_reset(identity: Identity, identifier: str) -> None:
    """E-mail a reset link to the active account(s) the identifier names; nothing otherwise.

    The caller answers the same in every case. A membership number names one member; a contract
    number may name several (a family): each active account of it gets a link to its own address.
    """
    identifier = identifier.strip()
    now = _now()
    async with identity.db.transaction() as session:
        rows = (
            await session.exec(
                select(Account, Member)
                .join(Member, Member.id == Account.member_id)
                .where(
                    or_(Member.membership_number == identifier, Member.contract_number == identifier),
                    Account.status == "active",
                )
                .order_by(Member.membership_number != identifier, Account.id)
                .limit(5)
                .with_for_update(of=Account)
            )
        ).all()
        exact = [(a, m) for a, m in rows if m.membership_number == identifier]
        for account, member in exact or rows:
            await _issue_reset_link(identity, session, account, member, now)
    if not rows:
        log.info("password reset asked for no active account")


async def _live_reset_links(session, account_id: uuid.UUID, now: datetime) -> list[PasswordResetToken]:
    result = await session.exec(
        select(PasswordResetToken)
        .where(
            PasswordResetToken.account_id == account_id,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.revoked_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .order_by(PasswordResetToken.created_at.desc())
    )
    return list(result)


async def _issue_reset_link(identity: Identity, session, account: Account, member: Member, now: datetime) -> None:
    live = await _live_reset_links(session, account.id, now)
    if live and now - live[0].created_at < timedelta(seconds=identity.settings.password_reset_min_interval_seconds):
        log.info("password reset link sent moments ago: not sent again", extra={"account_id": str(account.id)})
        return
    await links.revoke_pending(session, PasswordResetToken, account.id, now)
    token = new_link_token()
    expires_at = now + timedelta(minutes=identity.settings.password_reset_ttl_minutes)
    session.add(PasswordResetToken(token_hash=token_hash(token), account_id=account.id, created_at=now, expires_at=expires_at))
    await identity.record(
        session,
        PasswordResetRequested(
            member_id=member.id,
            account_id=account.id,
            email=account.email,
            first_name=member.first_name,
            last_name=member.last_name,
            token=token,
            expires_at=expires_at,
        ),
        member.id,
    )
    log.info("password reset link issued", extra={"account_id": str(account.id)})


def _judge_reset_link(link: PasswordResetToken | None, account: Account | None, now: datetime) -> None:
    refusal = "unknown" if account is None or account.status != "active" else link_refusal(link, now)
    if refusal:
        raise reset_problem(f"password_reset_token_{refusal}")


async def confirm_password_reset(identity: Identity, token: str, password: str, confirmation: str) -> None:
    digest = token_hash(token)
    async with identity.db.transaction() as session:
        link = (await session.exec(select(PasswordResetToken).where(PasswordResetToken.token_hash == digest))).first()
        row = None
        if link is not None:
            row = (
                await session.exec(
                    select(Account, Member).join(Member, Member.id == Account.member_id).where(Account.id == link.account_id)
                )
            ).first()
    account, member = row if row is not None else (None, None)
    _judge_reset_link(link, account, _now())
    errors = new_password_errors(password, confirmation, member, field="password", confirmation_field="password_confirmation")
    if errors:
        raise _invalid_fields(errors)
    new_hash = await identity.hasher.hash(password)
    now = _now()
    async with identity.db.transaction() as session:
        # Again under lock: two submissions of the same link race, one wins.
        link = (
            await session.exec(select(PasswordResetToken).where(PasswordResetToken.token_hash == digest).with_for_update())
        ).first()
        account = await session.get(Account, link.account_id, with_for_update=True) if link is not None else None
        _judge_reset_link(link, account, now)
        link.used_at = now
        account.password_hash = new_hash
        session.add_all([link, account])
        await links.revoke_pending(session, PasswordResetToken, account.id, now)
        ended = await sessions.revoke_sessions(session, account.id, now, "password_reset")
        # The member proved who they are: the log-in delays on their numbers are lifted.
        await sessions.clear_throttles(
            identity, session, sessions.LOGIN_SCOPE, [member.membership_number, member.contract_number]
        )
        await _announce(identity, session, account, member, "reset", now)
    log.info("password reset", extra={"account_id": str(account.id), "sessions_ended": ended})


# -- change, logged in --------------------------------------------------------------------------


async def change_password(
    identity: Identity,
    account_id: uuid.UUID,
    session_id: uuid.UUID | None,
    current_password: str,
    new_password: str,
    confirmation: str,
) -> int:
    """Returns how many other sessions were ended. Wrong current passwords are throttled per
    account like log-ins (a stolen access token does not give unlimited guesses)."""
    await sessions.require_live_session(identity, account_id, session_id)
    key = sessions.throttle_key(identity, PASSWORD_CHANGE_SCOPE, str(account_id))
    await sessions.throttle_gate(identity, key)
    async with identity.db.transaction() as session:
        account, member = (
            await session.exec(select(Account, Member).join(Member, Member.id == Account.member_id).where(Account.id == account_id))
        ).one()
    if not await identity.hasher.verify(account.password_hash, current_password):
        raise current_password_incorrect()
    async with identity.direct.transaction() as conn:
        await sessions.throttle_passed(conn, key)
    errors = new_password_errors(
        new_password, confirmation, member, field="new_password", confirmation_field="new_password_confirmation"
    )
    if new_password == current_password:
        errors.append(
            field_error("new_password", "password_unchanged", "Le nouveau mot de passe doit être différent de l'actuel.")
        )
    if errors:
        raise _invalid_fields(errors)
    new_hash = await identity.hasher.hash(new_password)
    now = _now()
    async with identity.db.transaction() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        account.password_hash = new_hash
        session.add(account)
        await links.revoke_pending(session, PasswordResetToken, account.id, now)
        ended = await sessions.revoke_sessions(session, account.id, now, "password_changed", keep=session_id)
        await _announce(identity, session, account, member, "change", now)
    log.info("password changed", extra={"account_id": str(account_id), "sessions_ended": ended})
    return ended


async def _announce(identity: Identity, session, account: Account, member: Member, method: str, now: datetime) -> None:
    await identity.record(
        session,
        PasswordChanged(
            member_id=member.id,
            account_id=account.id,
            email=account.email,
            first_name=member.first_name,
            last_name=member.last_name,
            method=method,
            changed_at=now,
        ),
        member.id,
    )
