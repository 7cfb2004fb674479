"""The logged-in member's own data: profile (postal address, phone), communication preferences,
and the change of the account's e-mail address (confirmed from the new address).

Every use case starts from the verified access token's principal and checks that its account
belongs to its member and is active: the gateway alone is never trusted for ownership."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func
from sqlmodel import select

from identity.adapters.tables import (
    Account,
    AccountThrottle,
    CommunicationPreferences,
    EmailChangeToken,
    Member,
    MemberProfile,
)
from identity.domain.profile import InvalidPhone, PostalAddress, clean_address, normalise_phone, phone_error
from identity.domain.tokens import link_refusal, new_link_token, token_hash
from identity.service_layer import links, throttle
from identity.service_layer.errors import too_many_attempts
from identity.service_layer.accounts import Identity
from shared.contracts.identity import (
    CommunicationPreferencesChanged,
    EmailChanged,
    EmailChangeRequested,
    ProfileUpdated,
)
from shared.contracts.identity import PostalAddress as PostalAddressPayload
from shared.platform.auth import Principal
from shared.platform.problems import FieldError, ProblemError, field_error

log = logging.getLogger(__name__)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()  # a PATCH field that was not sent (None means "remove")


def _now() -> datetime:
    return datetime.now(UTC)


# -- problems -----------------------------------------------------------------------------------

ACCOUNT_NOT_FOUND = ProblemError(404, "account_not_found", "Compte introuvable")


def validation_failed(errors: list[FieldError]) -> ProblemError:
    return ProblemError(
        422, "validation_failed", "Certains champs ne sont pas valides", "Corrigez les champs signalés puis réessayez.",
        errors,
    )


def password_incorrect() -> ProblemError:
    return ProblemError(
        403,
        "password_incorrect",
        "Mot de passe incorrect",
        "Le mot de passe saisi n'est pas celui de votre espace.",
        [field_error("password", "password_incorrect", "Le mot de passe est incorrect.")],
    )


def email_change_limit_reached() -> ProblemError:
    return ProblemError(
        429,
        "email_change_limit_reached",
        "Trop de demandes",
        "Vous avez demandé plusieurs changements d'adresse e-mail en peu de temps. Réessayez dans une heure.",
        headers={"Retry-After": "3600"},
        extensions={"retry_after": 3600},
    )


def email_change_problem(code: str) -> ProblemError:
    status, title, detail = {
        "email_change_token_unknown": (400, "Lien invalide", "Ce lien de confirmation d'adresse e-mail n'est pas valide."),
        "email_change_token_used": (409, "Lien déjà utilisé", "Ce lien a déjà servi : votre nouvelle adresse e-mail est enregistrée."),
        "email_change_token_expired": (
            410,
            "Lien expiré",
            "Ce lien a expiré. Refaites la demande de changement d'adresse depuis votre espace.",
        ),
        "email_change_token_revoked": (
            410,
            "Lien remplacé",
            "Une demande plus récente a été faite : utilisez le lien du dernier e-mail reçu.",
        ),
    }[code]
    return ProblemError(status, code, title, detail)


# -- ownership ----------------------------------------------------------------------------------


async def _owned_account(session, principal: Principal, *, lock: bool = False) -> tuple[Account, Member]:
    account = await session.get(Account, principal.account_id, with_for_update=lock or None)
    if account is None or account.member_id != principal.member_id or account.status != "active":
        raise ACCOUNT_NOT_FOUND
    member = await session.get(Member, account.member_id)
    return account, member


# -- profile ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawAddress:
    """The address as sent, before the rules of identity.domain.profile."""

    line1: str | None
    line2: str | None
    postal_code: str | None
    city: str | None
    country: str | None = "FR"


@dataclass(frozen=True)
class ProfileView:
    postal_address: PostalAddress | None
    phone: str | None
    updated_at: datetime | None


def _address_of(row: MemberProfile | None) -> PostalAddress | None:
    if row is None or row.address_line1 is None:
        return None
    return PostalAddress(row.address_line1, row.address_line2, row.postal_code, row.city, row.country)


def _view(row: MemberProfile | None) -> ProfileView:
    if row is None:
        return ProfileView(None, None, None)
    return ProfileView(_address_of(row), row.phone, row.updated_at)


async def get_profile(identity: Identity, principal: Principal) -> ProfileView:
    async with identity.db.transaction() as session:
        await _owned_account(session, principal)
        return _view(await session.get(MemberProfile, principal.member_id))


async def update_profile(
    identity: Identity,
    principal: Principal,
    *,
    postal_address: RawAddress | None | _Unset = UNSET,
    phone: str | None | _Unset = UNSET,
) -> ProfileView:
    """Change what was sent (None removes it), keep the rest. ProfileUpdated is published when
    something actually changed; it carries the address (letters need it), not the phone."""
    errors: list[FieldError] = []
    address: PostalAddress | None | _Unset = postal_address
    if isinstance(postal_address, RawAddress):
        address, address_errors = clean_address(
            line1=postal_address.line1, line2=postal_address.line2, postal_code=postal_address.postal_code,
            city=postal_address.city, country=postal_address.country,
        )
        errors += address_errors
    number: str | None | _Unset = phone
    if isinstance(phone, str):
        try:
            number = normalise_phone(phone)
        except InvalidPhone:
            errors.append(phone_error())
    if errors:
        raise validation_failed(errors)

    now = _now()
    async with identity.db.transaction() as session:
        await _owned_account(session, principal, lock=True)  # one change at a time per account
        row = await session.get(MemberProfile, principal.member_id)
        if row is None:
            row = MemberProfile(member_id=principal.member_id, updated_at=now)
        changed: list[str] = []
        if not isinstance(address, _Unset) and address != _address_of(row):
            changed.append("postal_address")
            row.address_line1 = address.line1 if address else None
            row.address_line2 = address.line2 if address else None
            row.postal_code = address.postal_code if address else None
            row.city = address.city if address else None
            row.country = address.country if address else None
        if not isinstance(number, _Unset) and number != row.phone:
            changed.append("phone")
            row.phone = number
        if not changed:
            return _view(await session.get(MemberProfile, principal.member_id))
        row.updated_at = now
        session.add(row)
        current = _address_of(row)
        await identity.record(
            session,
            ProfileUpdated(
                member_id=principal.member_id,
                account_id=principal.account_id,
                changed=changed,
                postal_address=PostalAddressPayload(**asdict(current)) if current else None,
                updated_at=now,
            ),
            principal.member_id,
        )
    log.info("profile updated", extra={"account_id": str(principal.account_id), "changed": changed})
    return _view(row)


# -- communication preferences -------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    paperless: bool
    reimbursement_alerts: bool


async def get_preferences(identity: Identity, principal: Principal) -> Preferences:
    async with identity.db.transaction() as session:
        account, _ = await _owned_account(session, principal)
        row = await session.get(CommunicationPreferences, account.id)
        return Preferences(account.paperless, row.reimbursement_alerts if row else True)


async def set_preferences(identity: Identity, principal: Principal, wanted: Preferences) -> Preferences:
    """Paperless is the registration's choice (accounts.paperless); reimbursement alerts are on
    until the member turns them off. Each actual change publishes CommunicationPreferencesChanged."""
    now = _now()
    async with identity.db.transaction() as session:
        account, _ = await _owned_account(session, principal, lock=True)
        row = await session.get(CommunicationPreferences, account.id)
        current = Preferences(account.paperless, row.reimbursement_alerts if row else True)
        if current == wanted:
            return current
        account.paperless = wanted.paperless
        session.add(account)
        if row is None:
            row = CommunicationPreferences(account_id=account.id, updated_at=now)
        row.reimbursement_alerts = wanted.reimbursement_alerts
        row.updated_at = now
        session.add(row)
        await identity.record(
            session,
            CommunicationPreferencesChanged(
                member_id=account.member_id,
                paperless=wanted.paperless,
                reimbursement_alerts=wanted.reimbursement_alerts,
                changed_at=now,
            ),
            account.member_id,
        )
    log.info("communication preferences changed", extra={"account_id": str(principal.account_id)})
    return wanted


# -- e-mail change -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailChangePending:
    new_email: str
    expires_at: datetime


async def request_email_change(
    identity: Identity, principal: Principal, *, new_email: str, new_email_confirmation: str, password: str
) -> EmailChangePending:
    """Re-check the password, then send a confirmation link to the new address and an alert to
    the current one. Nothing changes until the link is opened (confirm_email_change).

    Each re-check counts against the account before the password is verified (and is taken
    back when it was right), so parallel guesses cannot slip past the limit."""
    settings = identity.settings
    new_email = new_email.strip()
    now = _now()
    async with identity.db.transaction() as session:
        account, _ = await _owned_account(session, principal, lock=True)
        errors: list[FieldError] = []
        if new_email.casefold() != new_email_confirmation.strip().casefold():
            errors.append(
                field_error("new_email_confirmation", "email_mismatch", "Les deux adresses e-mail ne sont pas identiques.")
            )
        if new_email.casefold() == account.email.strip().casefold():
            errors.append(field_error("new_email", "email_unchanged", "C'est déjà l'adresse e-mail de votre espace."))
        if errors:
            raise validation_failed(errors)
        window = timedelta(minutes=settings.password_recheck_window_minutes)
        if await throttle.count_since(session, account.id, throttle.PASSWORD_RECHECK, now - window) >= (
            settings.password_recheck_max_failures
        ):
            oldest = await throttle.oldest_since(session, account.id, throttle.PASSWORD_RECHECK, now - window)
            retry_after = max(1, int(((oldest or now) + window - now).total_seconds()) + 1)
            log.info("password re-check refused: too many failures", extra={"account_id": str(account.id)})
            raise too_many_attempts(retry_after)
        recent_requests = (
            await session.exec(
                select(func.count())
                .select_from(EmailChangeToken)
                .where(EmailChangeToken.account_id == account.id, EmailChangeToken.created_at > now - timedelta(hours=1))
            )
        ).one()
        if recent_requests >= settings.email_changes_per_hour:
            raise email_change_limit_reached()
        attempt = await throttle.note(session, account.id, throttle.PASSWORD_RECHECK, now)
        attempt_id, password_hash = attempt.id, account.password_hash

    if not await identity.hasher.verify(password_hash, password):
        log.info("password re-check failed", extra={"account_id": str(principal.account_id)})
        raise password_incorrect()

    token = new_link_token()
    expires_at = now + timedelta(hours=settings.email_change_ttl_hours)
    async with identity.db.transaction() as session:
        account, member = await _owned_account(session, principal, lock=True)
        await session.execute(delete(AccountThrottle).where(AccountThrottle.id == attempt_id))
        if account.password_hash != password_hash:  # changed meanwhile: the re-check is void
            raise password_incorrect()
        await links.revoke_pending(session, EmailChangeToken, account.id, now)
        session.add(
            EmailChangeToken(
                token_hash=token_hash(token), account_id=account.id, new_email=new_email, created_at=now, expires_at=expires_at
            )
        )
        await identity.record(
            session,
            EmailChangeRequested(
                member_id=member.id,
                account_id=account.id,
                new_email=new_email,
                previous_email=account.email,
                first_name=member.first_name,
                last_name=member.last_name,
                token=token,
                expires_at=expires_at,
                requested_at=now,
            ),
            member.id,
        )
    log.info("e-mail change requested", extra={"account_id": str(principal.account_id)})
    return EmailChangePending(new_email=new_email, expires_at=expires_at)


async def confirm_email_change(identity: Identity, token: str) -> str:
    """The new address proved it receives mail: it becomes the account's. Returns it."""
    now = _now()
    async with identity.db.transaction() as session:
        link = (
            await session.exec(
                select(EmailChangeToken).where(EmailChangeToken.token_hash == token_hash(token)).with_for_update()
            )
        ).first()
        account = await session.get(Account, link.account_id, with_for_update=True) if link else None
        refusal = link_refusal(link, now)
        if refusal in (None, "expired") and account.status != "active":
            refusal = "revoked"
        if refusal:
            raise email_change_problem(f"email_change_token_{refusal}")
        link.used_at = now
        account.email = link.new_email
        session.add_all([link, account])
        member = await session.get(Member, account.member_id)
        await identity.record(
            session,
            EmailChanged(
                member_id=member.id,
                account_id=account.id,
                email=link.new_email,
                first_name=member.first_name,
                last_name=member.last_name,
                changed_at=now,
            ),
            member.id,
        )
    log.info("e-mail changed", extra={"account_id": str(account.id)})
    return link.new_email
