"""identity's HTTP API for log-in and sessions, terms acceptance, password recovery and change.
Routes only translate requests into use-case calls and back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from identity.entrypoints.http import NFKC, Accepted, IdentityDep
from identity.service_layer import recovery, sessions
from shared.platform.auth import CurrentMember, bearer_token
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])

Identifier = Annotated[str, Field(min_length=1, max_length=64, description="Membership number or contract number"), NFKC]
Password = Annotated[str, Field(min_length=1, max_length=1024), NFKC]
# Long enough for the policy to name the rule; the policy itself caps the length.
NewPassword = Annotated[str, Field(max_length=1024), NFKC]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=256)]


@dataclass(frozen=True)
class CurrentSessionPrincipal:
    account_id: uuid.UUID
    member_id: uuid.UUID
    session_id: uuid.UUID | None


async def current_session(request: Request, member: CurrentMember) -> CurrentSessionPrincipal:
    """The verified member plus the `sid` claim (the session the access token belongs to)."""
    # CurrentMember has just verified this very token (signature, expiry, audience, issuer).
    claims = jwt.decode(bearer_token(request), options={"verify_signature": False})
    try:
        session_id = uuid.UUID(str(claims.get("sid")))
    except ValueError:
        session_id = None
    return CurrentSessionPrincipal(member.account_id, member.member_id, session_id)


CurrentSession = Annotated[CurrentSessionPrincipal, Depends(current_session)]


# -- sessions -----------------------------------------------------------------------------------


class SessionRequest(RequestBody):
    identifier: Identifier
    password: Password


class RefreshRequest(RequestBody):
    refresh_token: OpaqueToken


class SessionCreated(BaseModel):
    access_token: str = Field(description="EdDSA JWT; its `sid` claim names the session.")
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds the access token lives (at most 900).")
    refresh_token: str = Field(
        description="Opaque, single use: POST /sessions/refresh spends it for a new pair. Keep it secret; "
        "presenting a spent one ends the whole session."
    )
    refresh_expires_in: int = Field(description="Seconds the refresh token may still be used.")
    terms_acceptance_required: bool = Field(
        description="True when the member accepted an older version of the terms of use than `terms_version`: "
        "show the current terms and POST /me/terms-acceptances before going on."
    )
    terms_version: str = Field(description="The version of the terms of use in force.")


def _with_token(operation_ref: str, description: str) -> dict[str, Any]:
    return {
        "operationRef": operation_ref,
        "description": description,
        "parameters": {"header.Authorization": "Bearer {$response.body#/access_token}"},
    }


# OpenAPI links: what a client (or a stateful test) does next with a new pair of tokens.
SESSION_LINKS: dict[str, Any] = {
    "GetMe": _with_token("#/paths/~1api~1v1~1identity~1me/get", "The account the access token opens."),
    "GetProfile": _with_token("#/paths/~1api~1v1~1identity~1me~1profile/get", "The member's contact details."),
    "GetPreferences": _with_token(
        "#/paths/~1api~1v1~1identity~1me~1preferences/get", "The member's communication preferences."
    ),
    "Refresh": {
        "operationRef": "#/paths/~1api~1v1~1identity~1sessions~1refresh/post",
        "description": "Spend the refresh token for a new pair.",
        "requestBody": {"refresh_token": "$response.body#/refresh_token"},
    },
    "LogOut": _with_token("#/paths/~1api~1v1~1identity~1sessions~1current/delete", "End this session."),
    "LogOutEverywhere": _with_token("#/paths/~1api~1v1~1identity~1sessions/delete", "End every session."),
}


def _created(tokens: sessions.SessionTokens) -> SessionCreated:
    return SessionCreated(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
        terms_acceptance_required=tokens.terms_acceptance_required,
        terms_version=tokens.terms_version,
    )


@router.post(
    "/sessions", summary="Log in", responses={200: {"links": SESSION_LINKS}, **problem_responses(401, 403, 422, 429)}
)
async def log_in(body: SessionRequest, identity: IdentityDep) -> SessionCreated:
    """Membership number or contract number, and the password → an access token and a refresh token.

    - 401 `invalid_credentials`: unknown identifier or wrong password (the same answer for both).
    - 403 `account_not_activated`: right password, account not activated yet.
    - 429 `too_many_attempts` with `Retry-After` (seconds; also `retry_after` in the problem
      body): after 5 consecutive failures on an
      identifier each attempt waits 1, 2, 4… seconds (at most 15 minutes), and 20 failures in an
      hour block it until that hour ends; known and unknown identifiers alike. A success resets.
    - When the terms of use changed since the member accepted them, the log-in still succeeds
      with `terms_acceptance_required: true` and the current `terms_version`.
    """
    return _created(await sessions.log_in(identity, body.identifier, body.password))


@router.post(
    "/sessions/refresh",
    summary="Renew my access token",
    responses={200: {"links": SESSION_LINKS}, **problem_responses(401, 422, 429)},
)
async def refresh(body: RefreshRequest, identity: IdentityDep) -> SessionCreated:
    """Spends the refresh token and answers a new access token and a new refresh token.

    401 codes: `refresh_token_invalid` (unknown), `refresh_token_expired` (the session's 30-day
    lifetime, or its idle lifetime, is over), `session_revoked` (logged out, password changed),
    `refresh_token_reused` (this refresh token had already been spent: the whole session is
    ended on every device that shared it). In every case: log in again.
    """
    return _created(await sessions.refresh(identity, body.refresh_token))


@router.delete(
    "/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    responses=problem_responses(401),
)
async def log_out(principal: CurrentSession, identity: IdentityDep) -> Response:
    """Ends the session of the access token: its refresh tokens stop working. The access token
    itself is accepted by the other services until it expires (at most 15 minutes): forget it."""
    await sessions.log_out(identity, principal.account_id, principal.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out everywhere",
    responses=problem_responses(401),
)
async def log_out_everywhere(principal: CurrentSession, identity: IdentityDep) -> Response:
    """Ends every session of the account, this one included, on every device."""
    await sessions.log_out_everywhere(identity, principal.account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- terms of use -------------------------------------------------------------------------------


class TermsAcceptanceRequest(RequestBody):
    version: Annotated[str, Field(min_length=1, max_length=32, description="Must be the version in force")]


class TermsAccepted(BaseModel):
    terms_version: str
    accepted_at: datetime


@router.post(
    "/me/terms-acceptances",
    status_code=status.HTTP_201_CREATED,
    summary="Accept the terms of use in force",
    responses=problem_responses(401, 404, 422),
)
async def accept_terms(body: TermsAcceptanceRequest, principal: CurrentSession, identity: IdentityDep) -> TermsAccepted:
    """422 (`validation_failed`, field `version`, code `terms_version_not_current`) when the
    version is not the one in force (see `terms_version` in the log-in answer)."""
    accepted = await sessions.accept_terms(identity, principal.account_id, body.version)
    return TermsAccepted(terms_version=accepted.terms_version, accepted_at=accepted.accepted_at)


# -- password recovery --------------------------------------------------------------------------


class PasswordResetRequest(RequestBody):
    identifier: Identifier


@router.post(
    "/password-resets",
    status_code=status.HTTP_202_ACCEPTED,
    summary="I forgot my password",
    responses=problem_responses(422, 429),
)
async def request_password_reset(body: PasswordResetRequest, identity: IdentityDep) -> Accepted:
    """Always 202 for a well-formed request: the answer does not tell whether the identifier
    exists. When it names an active account, a single-use link valid 30 minutes is e-mailed to
    the account's address (older links stop working; at most one e-mail a minute)."""
    await recovery.request_password_reset(identity, body.identifier)
    return Accepted(
        detail="Si ce numéro correspond à un espace adhérent activé, vous allez recevoir un e-mail "
        "pour choisir un nouveau mot de passe. Le lien est valable 30 minutes."
    )


class PasswordResetConfirmation(RequestBody):
    token: OpaqueToken
    password: NewPassword
    password_confirmation: NewPassword


class PasswordChangedAnswer(BaseModel):
    status: str = "password_changed"
    detail: str


@router.post(
    "/password-resets/confirm",
    summary="Choose a new password from the e-mailed link",
    responses=problem_responses(400, 409, 410, 422),
)
async def confirm_password_reset(body: PasswordResetConfirmation, identity: IdentityDep) -> PasswordChangedAnswer:
    """Sets the new password (same policy as at registration; 422 names each broken rule) and
    ends every session of the account on every device; an e-mail tells the member.

    Link problems: 400 `password_reset_token_unknown`, 409 `password_reset_token_used`,
    410 `password_reset_token_expired`, 410 `password_reset_token_revoked` (a newer link was sent,
    or the password changed since).
    """
    await recovery.confirm_password_reset(identity, body.token, body.password, body.password_confirmation)
    return PasswordChangedAnswer(
        detail="Votre mot de passe a été modifié. Connectez-vous avec votre nouveau mot de passe."
    )


class PasswordChangeRequest(RequestBody):
    current_password: Password
    new_password: NewPassword
    new_password_confirmation: NewPassword


@router.post(
    "/me/password",
    summary="Change my password",
    responses=problem_responses(401, 403, 422, 429),
)
async def change_password(body: PasswordChangeRequest, principal: CurrentSession, identity: IdentityDep) -> PasswordChangedAnswer:
    """Needs the current password: 403 `current_password_incorrect` (field error on
    `current_password`) when it is wrong, 429 `too_many_attempts` after repeated wrong ones.
    The new password follows the registration's policy (422) and must differ from the current one.

    **Sessions:** this session stays open; every other session of the account (other devices)
    is ended. 401 `session_revoked` when this session itself was ended meanwhile. An e-mail tells
    the member their password changed.
    """
    await recovery.change_password(
        identity,
        principal.account_id,
        principal.session_id,
        body.current_password,
        body.new_password,
        body.new_password_confirmation,
    )
    return PasswordChangedAnswer(detail="Votre mot de passe a été modifié.")
