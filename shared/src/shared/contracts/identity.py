"""Events published by identity on `identity.members.v1`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, PlainSerializer, SecretStr

from shared.contracts.envelope import Event
from shared.contracts.topics import IDENTITY_MEMBERS


# A single-use link token on its way to notifications, which builds the link. SecretStr keeps it
# out of reprs, logs and traces; the serializer puts the real value on the wire only.
LinkToken = Annotated[
    SecretStr,
    PlainSerializer(lambda token: token.get_secret_value(), return_type=str),
    Field(json_schema_extra={"format": "password", "writeOnly": True}),
]


class MemberRegistered(Event):
    """A member from the registry created a (still pending) online account."""

    event_type = "identity.MemberRegistered"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    paperless: bool
    registered_at: datetime


class ToTheAccountsAddress(Event):
    """The fields of every event that ends in an e-mail to the account's address."""

    member_id: uuid.UUID
    account_id: uuid.UUID
    email: EmailStr
    first_name: str
    last_name: str


class ActivationLinkIssued(ToTheAccountsAddress):
    """An activation link must reach the member by e-mail.

    Carries the raw token because notifications builds the link; the token is a secret, kept out
    of logs and traces (SecretStr), and the topic has a short retention in production.
    """

    event_type = "identity.ActivationLinkIssued"
    topic = IDENTITY_MEMBERS

    token: LinkToken
    expires_at: datetime


class AccountActivated(Event):
    event_type = "identity.AccountActivated"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    activated_at: datetime


class MemberEnrolled(Event):
    """A member of the registry (imported from the insurer's back office) was added or changed."""

    event_type = "identity.MemberEnrolled"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    birth_date: date
    # Added within v1 (optional: older producers and examples omit them).
    plan_code: str | None = Field(default=None, description="The contract's plan, e.g. ESSENTIEL or CONFORT")
    role: str | None = Field(default=None, description='"holder", "spouse" or "child" on the contract')
    coverage_start: date | None = Field(default=None, description="First day the member is covered")
    coverage_end: date | None = Field(default=None, description="Last day covered; null while covered")


class AccountAlreadyExists(ToTheAccountsAddress):
    """Someone registered with the data of a member whose account is already active.

    The HTTP answer is the same as for a new account; the member learns it from this e-mail,
    sent to the address of the existing account (never the one typed in the form, which may be
    someone else's), with the way to reset the password."""

    event_type = "identity.AccountAlreadyExists"
    topic = IDENTITY_MEMBERS

    attempted_at: datetime


class EmailChangeRequested(Event):
    """A logged-in member asked to change the account's e-mail address: a confirmation link to
    the new address, an alert to the old one. Carries the raw token (see ActivationLinkIssued)."""

    event_type = "identity.EmailChangeRequested"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    new_email: EmailStr
    previous_email: EmailStr
    first_name: str
    last_name: str
    token: LinkToken
    expires_at: datetime
    requested_at: datetime


class EmailChanged(ToTheAccountsAddress):
    """The member confirmed the new address from the link: it is now the account's e-mail."""

    event_type = "identity.EmailChanged"
    topic = IDENTITY_MEMBERS

    changed_at: datetime


class PostalAddress(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line1: str
    line2: str | None = None
    postal_code: str
    city: str
    country: str = Field(description="ISO 3166-1 alpha-2")


class ProfileUpdated(Event):
    """The member changed the profile. Carries the postal address (documents addresses letters
    with it) but not the phone number, which no consumer needs: `changed` says what changed."""

    event_type = "identity.ProfileUpdated"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    changed: list[str] = Field(description="Parts that changed: postal_address, phone")
    postal_address: PostalAddress | None = Field(description="The current address; null when none is known")
    updated_at: datetime


class CommunicationPreferencesChanged(Event):
    """Paperless documents and reimbursement alerts ("Profil › Communication")."""

    event_type = "identity.CommunicationPreferencesChanged"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    paperless: bool
    reimbursement_alerts: bool
    changed_at: datetime


class PasswordResetRequested(ToTheAccountsAddress):
    """A member who forgot the password asked for a reset link, and an active account matched.

    Carries the raw single-use token because notifications builds the link; it is a secret,
    kept out of logs and traces (SecretStr), like ActivationLinkIssued's."""

    event_type = "identity.PasswordResetRequested"
    topic = IDENTITY_MEMBERS

    token: LinkToken
    expires_at: datetime


class PasswordChanged(ToTheAccountsAddress):
    """The account's password changed; the member is alerted by e-mail (whoever changed it).

    `method` is "reset" (from an e-mailed link: every session was ended) or "change" (from the
    member space, current password given: the other sessions were ended). Tolerant readers
    treat another value like "change"."""

    event_type = "identity.PasswordChanged"
    topic = IDENTITY_MEMBERS

    method: str = Field(description='"reset" or "change"')
    changed_at: datetime
