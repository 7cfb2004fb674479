"""identity's HTTP API for the member's own data: profile, communication preferences, change of
e-mail address. Routes only translate requests into use-case calls and back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from identity.entrypoints.http import NFKC, Email, IdentityDep, check_email
from identity.service_layer import profile
from identity.service_layer.profile import UNSET, Preferences, ProfileView, RawAddress
from shared.platform.auth import CurrentMember
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])


# Generous caps here; the address rules (38 characters a line...) are the domain's, with their
# own French messages. The document still says what the domain refuses outright: a field that is
# required cannot be blank (the domain answers `required`).
Line = Annotated[str, Field(max_length=200), NFKC]
NOT_BLANK = {"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}  # and no NUL (see shared.platform.inputs)


# -- profile ------------------------------------------------------------------------------------


class PostalAddressIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    line1: Line = Field(description="Number and street (38 characters at most)", json_schema_extra=NOT_BLANK)
    line2: Line | None = Field(default=None, description="Building, staircase, place called... (optional)")
    postal_code: Annotated[str, Field(max_length=20), NFKC] = Field(
        description="5 digits in France", json_schema_extra=NOT_BLANK
    )
    city: Line = Field(description="32 characters at most", json_schema_extra=NOT_BLANK)
    country: Annotated[str, Field(max_length=20), NFKC] | None = Field(
        default="FR", description="ISO 3166-1 alpha-2; FR when left out"
    )


class PostalAddressOut(BaseModel):
    line1: str
    line2: str | None
    postal_code: str
    city: str
    country: str


class ProfileOut(BaseModel):
    postal_address: PostalAddressOut | None
    phone: str | None = Field(description="E.164, e.g. +33612345678")
    updated_at: datetime | None


class ProfilePatch(RequestBody):
    """Only the members sent change: `postal_address` replaces the whole address, `phone` the
    number; null removes it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "postal_address": {
                    "line1": "12 rue des Lilas", "line2": "Bâtiment B", "postal_code": "69003", "city": "Lyon",
                    "country": "FR",
                },
                "phone": "06 12 34 56 78",
            }
        },
    )

    postal_address: PostalAddressIn | None = None
    phone: Annotated[str, Field(max_length=40), NFKC] | None = Field(
        default=None, description="French formats (06 12 34 56 78, +33 6 12 34 56 78...) or +<country code>"
    )


def _profile_out(view: ProfileView) -> ProfileOut:
    address = view.postal_address
    return ProfileOut(
        postal_address=PostalAddressOut(**address.__dict__) if address else None,
        phone=view.phone,
        updated_at=view.updated_at,
    )


@router.get("/me/profile", summary="My contact details", responses=problem_responses(401, 404))
async def get_profile(member: CurrentMember, identity: IdentityDep) -> ProfileOut:
    return _profile_out(await profile.get_profile(identity, member))


@router.patch(
    "/me/profile", summary="Change my postal address or phone", responses=problem_responses(401, 404, 413, 422)
)
async def update_profile(body: ProfilePatch, member: CurrentMember, identity: IdentityDep) -> ProfileOut:
    sent = body.model_fields_set
    address: Any = UNSET
    if "postal_address" in sent:
        a = body.postal_address
        address = RawAddress(a.line1, a.line2, a.postal_code, a.city, a.country) if a else None
    phone: Any = body.phone if "phone" in sent else UNSET
    return _profile_out(await profile.update_profile(identity, member, postal_address=address, phone=phone))


# -- communication preferences -------------------------------------------------------------------


class CommunicationPreferences(RequestBody):
    model_config = ConfigDict(json_schema_extra={"example": {"paperless": True, "reimbursement_alerts": True}})

    paperless: StrictBool = Field(description="Documents in the space instead of paper mail")
    reimbursement_alerts: StrictBool = Field(description="An e-mail for each reimbursement")


@router.get("/me/preferences", summary="My communication preferences", responses=problem_responses(401, 404))
async def get_preferences(member: CurrentMember, identity: IdentityDep) -> CommunicationPreferences:
    prefs = await profile.get_preferences(identity, member)
    return CommunicationPreferences(paperless=prefs.paperless, reimbursement_alerts=prefs.reimbursement_alerts)


@router.put(
    "/me/preferences", summary="Set my communication preferences", responses=problem_responses(401, 404, 413, 422)
)
async def set_preferences(
    body: CommunicationPreferences, member: CurrentMember, identity: IdentityDep
) -> CommunicationPreferences:
    prefs = await profile.set_preferences(identity, member, Preferences(body.paperless, body.reimbursement_alerts))
    return CommunicationPreferences(paperless=prefs.paperless, reimbursement_alerts=prefs.reimbursement_alerts)


# -- e-mail change -------------------------------------------------------------------------------


class EmailChangeRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "new_email": "camille.martin@example.net",
                "new_email_confirmation": "camille.martin@example.net",
                "password": "Espace-2026!ok",
            }
        }
    )

    new_email: Email
    new_email_confirmation: Email
    password: Annotated[str, Field(min_length=1, max_length=1024), NFKC]

    _emails = field_validator("new_email", "new_email_confirmation")(check_email)


class EmailChangeAccepted(BaseModel):
    status: str = "pending_confirmation"
    detail: str
    expires_at: datetime


@router.post(
    "/me/email-changes",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Change my e-mail address (confirmed from the new address)",
    responses=problem_responses(401, 403, 404, 413, 422, 429),
)
async def request_email_change(body: EmailChangeRequest, member: CurrentMember, identity: IdentityDep) -> EmailChangeAccepted:
    """The password is checked again. A link goes to the new address and an alert to the
    current one; the address changes only when the link is opened. 403 `password_incorrect`;
    429 `too_many_attempts` after repeated wrong passwords, `email_change_limit_reached` after
    too many requests in an hour."""
    pending = await profile.request_email_change(
        identity, member, new_email=body.new_email, new_email_confirmation=body.new_email_confirmation,
        password=body.password,
    )
    return EmailChangeAccepted(
        detail="Un e-mail de confirmation a été envoyé à votre nouvelle adresse. Votre adresse actuelle reste "
               "celle de votre espace tant que vous n'avez pas cliqué sur le lien qu'il contient.",
        expires_at=pending.expires_at,
    )


class EmailChangeConfirmation(RequestBody):
    token: Annotated[str, Field(min_length=1, max_length=256)]


class EmailChangeConfirmed(BaseModel):
    status: str = "confirmed"
    email: str


@router.post(
    "/email-changes/confirm",
    summary="Confirm my new e-mail address from the e-mailed link",
    responses=problem_responses(400, 409, 410, 413, 422),
)
async def confirm_email_change(body: EmailChangeConfirmation, identity: IdentityDep) -> EmailChangeConfirmed:
    """400 `email_change_token_unknown`, 409 `email_change_token_used`, 410
    `email_change_token_expired` or `email_change_token_revoked` (a newer request replaced it)."""
    return EmailChangeConfirmed(email=await profile.confirm_email_change(identity, body.token))
