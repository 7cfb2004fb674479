"""Events published by identity on `identity.members.v1`."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import EmailStr, Field, SecretStr

from shared.contracts.envelope import Event
from shared.contracts.topics import IDENTITY_MEMBERS


class MemberRegistered(Event):
    """A member from the registry created a (still pending) online account."""

    event_type = "identity.MemberRegistered"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    paperless: bool
    registered_at: datetime


class ActivationLinkIssued(Event):
    """An activation link must reach the member by e-mail.

    Carries the raw token because notifications builds the link; the token is a secret, kept out
    of logs and traces (SecretStr), and the topic has a short retention in production.
    """

    event_type = "identity.ActivationLinkIssued"
    topic = IDENTITY_MEMBERS

    member_id: uuid.UUID
    account_id: uuid.UUID
    email: EmailStr
    first_name: str
    last_name: str
    token: SecretStr = Field(json_schema_extra={"format": "password", "writeOnly": True})
    expires_at: datetime

    def model_dump(self, **kwargs):  # the wire form needs the secret itself
        data = super().model_dump(**kwargs)
        data["token"] = self.token.get_secret_value()
        return data


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
