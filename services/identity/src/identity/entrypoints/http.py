"""identity's HTTP API. Routes only translate requests into use-case calls and back."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, Request, status
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator

from identity.domain.registration import RegistrationForm
from identity.service_layer import accounts
from identity.service_layer.accounts import Identity
from shared.platform.auth import CurrentMember
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])


async def get_identity(request: Request) -> Identity:
    return request.app.state.identity


IdentityDep = Annotated[Identity, Depends(get_identity)]


def _nfkc(value: Any) -> Any:
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _french_or_iso_date(value: Any) -> Any:
    """The form may send 31/12/1980 (as typed) or 1980-12-31."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{2})/(\d{2})/(\d{4})\s*", value)
        if match:
            day, month, year = match.groups()
            try:
                return date(int(year), int(month), int(day))
            except ValueError as exc:
                raise ValueError("invalid_date|La date n'est pas valide (format attendu : JJ/MM/AAAA).") from exc
    return value


# Limits apply to the text as sent, which is what the OpenAPI document describes; NFKC comes
# after them (it can lengthen a text: "¸" becomes a space and a combining cedilla). Hence the
# Field first and NFKC as an AfterValidator in the types below.
NFKC = AfterValidator(_nfkc)
# Here NFKC comes first (fullwidth digits typed on some keyboards are accepted), and the Field
# still stands before the BeforeValidator: the other way round, pydantic leaves the pattern out
# of the JSON schema. ASCII spaces spelled out, so the pattern means the same to every regex
# engine (JSON Schema's, Python's, pydantic's Rust one).
MembershipNumber = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[ \t\r\n]*[A-Za-z0-9]+[ \t\r\n]*$"), BeforeValidator(_nfkc)
]
Name = Annotated[str, Field(min_length=1, max_length=100), NFKC]
Email = Annotated[str, Field(min_length=3, max_length=254, json_schema_extra={"format": "email"}), NFKC]


def check_email(value: str) -> str:
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError("invalid_email|L'adresse e-mail n'est pas valide.") from exc
    return value.strip()


class RegistrationRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "membership_number": "100000001",
                "last_name": "Martin",
                "first_name": "Camille",
                "birth_date": "1985-04-12",
                "email": "camille.martin@example.org",
                "email_confirmation": "camille.martin@example.org",
                "password": "Espace-2026!ok",
                "password_confirmation": "Espace-2026!ok",
                "terms_accepted": True,
                "paperless": True,
            }
        }
    )

    membership_number: MembershipNumber
    last_name: Name
    first_name: Name
    birth_date: Annotated[date, BeforeValidator(_french_or_iso_date)]
    email: Email
    email_confirmation: Email
    # Long enough for the policy to name the rule; the policy itself caps at 128.
    password: Annotated[str, Field(max_length=1024), NFKC]
    password_confirmation: Annotated[str, Field(max_length=1024), NFKC]
    # Strict: only a JSON true accepts the terms, not "yes" or 1; false is refused by the form's
    # rules (terms_not_accepted), and the document says so.
    terms_accepted: Annotated[StrictBool, Field(json_schema_extra={"const": True})]
    paperless: StrictBool = True

    _emails = field_validator("email", "email_confirmation")(check_email)


class Accepted(BaseModel):
    status: str = "accepted"
    detail: str


@router.post(
    "/registrations",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create my online space",
    responses=problem_responses(413, 422, 429),
)
async def register(body: RegistrationRequest, identity: IdentityDep) -> Accepted:
    """Always 202 for a well-formed request: the answer does not tell whether the member exists.
    A match with the registry creates a pending account and e-mails an activation link."""
    await accounts.register(identity, RegistrationForm(**body.model_dump()))
    return Accepted(detail="Si vos informations correspondent à notre fichier d'adhérents, "
                           "vous allez recevoir un e-mail pour activer votre espace.")


class ActivationRequest(RequestBody):
    token: Annotated[str, Field(min_length=1, max_length=256)]


class Activated(BaseModel):
    status: str = "active"


@router.post("/activations", summary="Activate my space from the e-mailed link", responses=problem_responses(400, 409, 410, 422))
async def activate(body: ActivationRequest, identity: IdentityDep) -> Activated:
    await accounts.activate(identity, body.token)
    return Activated()


class ActivationResendRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"example": {"membership_number": "100000001", "email": "camille.martin@example.org"}}
    )

    membership_number: MembershipNumber
    email: Email

    _email = field_validator("email")(check_email)


@router.post(
    "/activations/resend",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send me a new activation link",
    responses=problem_responses(413, 422, 429),
)
async def resend_activation(body: ActivationResendRequest, identity: IdentityDep) -> Accepted:
    """Always 202 for a well-formed request. When a pending account matches the membership number
    and the e-mail, a new link is sent and the older ones stop working; at most
    `activation_links_per_hour` links an hour per account (beyond, no e-mail, same answer)."""
    await accounts.resend_activation(identity, body.membership_number, body.email)
    return Accepted(detail="Si un espace en attente d'activation correspond à ces informations, "
                           "un nouveau lien d'activation vient d'être envoyé par e-mail.")


class Me(BaseModel):
    account_id: uuid.UUID
    member_id: uuid.UUID
    membership_number: str
    contract_number: str
    last_name: str
    first_name: str
    email: str
    paperless: bool
    activated_at: datetime | None


@router.get("/me", summary="My account", responses=problem_responses(401, 404))
async def me(member: CurrentMember, identity: IdentityDep) -> Me:
    return Me(**await accounts.account_view(identity, member.account_id))


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(identity: IdentityDep) -> dict[str, list[dict[str, str]]]:
    return identity.keys.jwks()
