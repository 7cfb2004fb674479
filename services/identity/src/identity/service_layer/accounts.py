"""identity's use cases: one function per command."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from identity.adapters.password_hasher import AsyncPasswordHasher
from identity.adapters.signing import KeyRing
from identity.adapters.tables import Account, ActivationToken, Member
from identity.config import IdentitySettings
from identity.domain.registration import RegistrationForm, RegistryEntry, form_errors, matches_registry
from identity.domain.tokens import link_refusal, new_link_token, token_hash
from identity.service_layer import links, throttle
from identity.service_layer.errors import activation_problem
from shared.contracts.envelope import Event
from shared.contracts.identity import AccountActivated, AccountAlreadyExists, ActivationLinkIssued, MemberRegistered
from shared.platform.context import current_correlation_id
from shared.platform.db import Database, DirectPool
from shared.platform.outbox import Recorded, record_event, record_events
from shared.platform.problems import ProblemError

log = logging.getLogger(__name__)


@dataclass
class Identity:
    """What identity's use cases need, wired once in main.py (tests may wire fakes)."""

    settings: IdentitySettings
    db: Database
    direct: DirectPool
    hasher: AsyncPasswordHasher
    keys: KeyRing

    def record(self, session, event, member_id: uuid.UUID):
        return record_event(session, event, key=str(member_id), producer=self.settings.service_name)

    def record_all(self, session, events: list[Event], member_id: uuid.UUID):
        """`record` for several events of one member, in one statement."""
        correlation_id = current_correlation_id()
        return record_events(
            session,
            [Recorded(event, key=str(member_id), correlation_id=correlation_id) for event in events],
            producer=self.settings.service_name,
        )


def _now() -> datetime:
    return datetime.now(UTC)


async def register(identity: Identity, form: RegistrationForm) -> None:
    """Create a pending account and send an activation link, if the form matches the registry.

    The caller answers the same whatever happens here, so nobody can learn from the answer (or
    its timing: the password is hashed in every case) whether a membership number exists.
    """
    errors = form_errors(form)
    if errors:
        raise ProblemError(422, "validation_failed", "Certains champs ne sont pas valides",
                           "Corrigez les champs signalés puis réessayez.", errors)
    password_hash = await identity.hasher.hash(form.password)
    now = _now()
    registered: MemberRegistered | None = None
    try:
        async with identity.db.transaction() as session:
            member = (
                await session.exec(
                    select(Member).where(Member.membership_number == form.membership_number.strip()).with_for_update()
                )
            ).first()
            if member is None or not matches_registry(
                form, RegistryEntry(member.last_name, member.first_name, member.birth_date)
            ):
                log.info("registration without a registry match")
                return
            account = (
                await session.exec(select(Account).where(Account.member_id == member.id).with_for_update())
            ).first()
            if account is not None and account.status == "active":
                # No second account: the owner is told by e-mail, at the account's address.
                await _notify_account_exists(identity, session, member, account, now)
                return
            if account is None:
                account = Account(id=uuid.uuid4(), member_id=member.id, created_at=now, status="pending",
                                  email="", password_hash="", paperless=form.paperless,
                                  terms_version="", terms_accepted_at=now)
                session.add(account)
                # Recorded with the link's event, in one statement, once the account is written
                # whole (one INSERT rather than an INSERT and an UPDATE).
                registered = MemberRegistered(
                    member_id=member.id, account_id=account.id, paperless=form.paperless, registered_at=now
                )
            else:
                # A member who registers again before activating: the latest form wins, and
                # the links sent before it stop working (within the hourly cap on links).
                if await _activation_links_capped(identity, session, account.id, now):
                    return
                await links.revoke_pending(session, ActivationToken, account.id, now)
            account.email = form.email.strip()
            account.password_hash = password_hash
            account.paperless = form.paperless
            account.terms_version = identity.settings.terms_version
            account.terms_accepted_at = now
            await session.flush()
            await _issue_activation_link(identity, session, member, account, now, first=registered)
    except IntegrityError:
        # Two registrations of the same member raced; the first one won and sent its link.
        log.info("concurrent registration ignored")
        return


async def _notify_account_exists(identity: Identity, session, member: Member, account: Account, now: datetime) -> None:
    """At most `account_exists_notices_per_hour` such e-mails, so the form cannot flood a mailbox."""
    since = now - timedelta(hours=1)
    if await throttle.count_since(session, account.id, throttle.ACCOUNT_EXISTS_NOTICE, since) >= (
        identity.settings.account_exists_notices_per_hour
    ):
        log.info("registration for an already active account, notice cap reached", extra={"account_id": str(account.id)})
        return
    await throttle.note(session, account.id, throttle.ACCOUNT_EXISTS_NOTICE, now)
    await identity.record(
        session,
        AccountAlreadyExists(
            member_id=member.id,
            account_id=account.id,
            email=account.email,
            first_name=member.first_name,
            last_name=member.last_name,
            attempted_at=now,
        ),
        member.id,
    )
    log.info("registration for an already active account, owner notified", extra={"account_id": str(account.id)})


async def _activation_links_capped(identity: Identity, session, account_id: uuid.UUID, now: datetime) -> bool:
    """True when the account was sent `activation_links_per_hour` links in the last hour."""
    sent = (
        await session.exec(
            select(func.count())
            .select_from(ActivationToken)
            .where(ActivationToken.account_id == account_id, ActivationToken.created_at > now - timedelta(hours=1))
        )
    ).one()
    if sent >= identity.settings.activation_links_per_hour:
        log.info("activation link cap reached, no new link", extra={"account_id": str(account_id)})
        return True
    return False


async def resend_activation(identity: Identity, membership_number: str, email: str) -> None:
    """A new activation link for a pending account whose membership number and e-mail match
    (e-mail compared without case); the older links stop working. Anything else, or the hourly
    cap reached, does nothing: the caller answers the same 202 in every case."""
    now = _now()
    async with identity.db.transaction() as session:
        row = (
            await session.exec(
                select(Account, Member)
                .join(Member, Member.id == Account.member_id)
                .where(Member.membership_number == membership_number.strip())
                .with_for_update(of=Account)
            )
        ).first()
        if row is None:
            log.info("activation resend without a match")
            return
        account, member = row
        if account.status != "pending" or account.email.strip().casefold() != email.strip().casefold():
            log.info("activation resend without a match")
            return
        if await _activation_links_capped(identity, session, account.id, now):
            return
        await links.revoke_pending(session, ActivationToken, account.id, now)
        await _issue_activation_link(identity, session, member, account, now)
        log.info("activation link sent again", extra={"account_id": str(account.id)})


async def _issue_activation_link(
    identity: Identity, session, member: Member, account: Account, now: datetime, *, first: Event | None = None
) -> None:
    """`first`: an event to record just before the link's, in the same statement."""
    token = new_link_token()
    expires_at = now + timedelta(hours=identity.settings.activation_ttl_hours)
    session.add(ActivationToken(token_hash=token_hash(token), account_id=account.id, created_at=now, expires_at=expires_at))
    await identity.record_all(
        session,
        [*([first] if first is not None else []), ActivationLinkIssued(
            member_id=member.id,
            account_id=account.id,
            email=account.email,
            first_name=member.first_name,
            last_name=member.last_name,
            token=token,
            expires_at=expires_at,
        )],
        member.id,
    )
    log.info("activation link issued", extra={"account_id": str(account.id)})


async def activate(identity: Identity, token: str) -> None:
    now = _now()
    async with identity.db.transaction() as session:
        link = (
            await session.exec(
                select(ActivationToken).where(ActivationToken.token_hash == token_hash(token)).with_for_update()
            )
        ).first()
        account = await session.get(Account, link.account_id, with_for_update=True) if link else None
        refusal = "used" if account is not None and account.status == "active" else link_refusal(link, now)
        if refusal:
            raise activation_problem(f"activation_token_{refusal}")
        link.used_at = now
        account.status = "active"
        account.activated_at = now
        session.add_all([link, account])
        await identity.record(
            session, AccountActivated(member_id=account.member_id, account_id=account.id, activated_at=now), account.member_id
        )


# Every member page asks for it (GET /me): one prepared statement, no ORM session around it.
_ACCOUNT_VIEW = (
    "SELECT a.id AS account_id, m.id AS member_id, m.membership_number, m.contract_number, m.last_name,"
    " m.first_name, a.email, a.paperless, a.activated_at FROM accounts a JOIN members m ON m.id = a.member_id"
    " WHERE a.id = $1"
)


async def account_view(identity: Identity, account_id: uuid.UUID) -> dict[str, Any]:
    """The account and its member's registry entry, by field name (account_id, member_id,
    membership_number, contract_number, last_name, first_name, email, paperless, activated_at)."""
    row = await identity.direct.pool.fetchrow(_ACCOUNT_VIEW, account_id)
    if row is None:
        raise ProblemError(404, "account_not_found", "Compte introuvable")
    return dict(row)
