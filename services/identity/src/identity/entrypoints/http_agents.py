"""identity's HTTP API for management-centre agents: set the password (and enrol the second
factor) from the one-time link, log in with a TOTP code, refresh, log out, who am I.

Back-office routes (`/api/v1/identity/backoffice/...`) take agent tokens only (CurrentAgent);
the gateway refuses member tokens there too, and agent tokens everywhere else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from identity.entrypoints.http import NFKC, Email, IdentityDep, check_email
from identity.service_layer import agents
from shared.platform.auth import CurrentAgent, bearer_token
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/identity", tags=["identity: agents"])

Password = Annotated[str, Field(min_length=1, max_length=1024), NFKC]
NewPassword = Annotated[str, Field(max_length=1024), NFKC]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=256)]


@dataclass(frozen=True)
class AgentSession:
    agent_id: uuid.UUID
    session_id: uuid.UUID | None


async def current_agent_session(request: Request, agent: CurrentAgent) -> AgentSession:
    # CurrentAgent has just verified this very token (signature, expiry, audience, role).
    claims = jwt.decode(bearer_token(request), options={"verify_signature": False})
    try:
        session_id = uuid.UUID(str(claims.get("sid")))
    except ValueError:
        session_id = None
    return AgentSession(agent.agent_id, session_id)


CurrentAgentSession = Annotated[AgentSession, Depends(current_agent_session)]


class AgentPasswordRequest(RequestBody):
    token: OpaqueToken = Field(description="From the link `identity create-agent` printed")
    password: NewPassword
    password_confirmation: NewPassword


class AgentEnrolled(BaseModel):
    status: str = "active"
    agent_id: uuid.UUID
    totp_uri: str = Field(
        description="otpauth://totp/… (RFC 6238, SHA1, 6 digits, 30 s): scan it into an authenticator app. "
        "Shown once; a new link from the administrator enrols a new one."
    )
    totp_secret: str = Field(description="The same secret in base32, for typing it in by hand.")


@router.post(
    "/agent-passwords",
    summary="Set my agent password and enrol my second factor",
    responses=problem_responses(400, 409, 410, 413, 422, 429),
)
async def set_agent_password(body: AgentPasswordRequest, identity: IdentityDep, response: Response) -> AgentEnrolled:
    """Spends the single-use link (24 h). The password follows the members' policy; the answer
    carries a new TOTP secret as an otpauth:// URI, needed at every log-in. Every open session of
    the agent ends. Link refusals: `agent_password_token_unknown` 400, `_used` 409, `_expired` /
    `_revoked` 410."""
    enrolled = await agents.set_password(identity, body.token, body.password, body.password_confirmation)
    # The answer holds a secret: never cached anywhere.
    response.headers["Cache-Control"] = "no-store"
    return AgentEnrolled(agent_id=enrolled.agent_id, totp_uri=enrolled.totp_uri, totp_secret=enrolled.totp_secret)


class AgentSessionRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"example": {"email": "agent@mutuelle.example", "password": "Espace-2026!ok", "totp_code": "123456"}}
    )

    email: Email
    password: Password
    totp_code: Annotated[str, Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$")]

    _email = field_validator("email")(check_email)


class AgentRefreshRequest(RequestBody):
    refresh_token: OpaqueToken


class AgentSessionCreated(BaseModel):
    access_token: str = Field(description="EdDSA JWT, audience espace-backoffice, role agent, sub = agent id.")
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str = Field(description="Opaque, single use (POST /agent-sessions/refresh).")
    refresh_expires_in: int


def _created(tokens: agents.AgentTokens, response: Response) -> AgentSessionCreated:
    response.headers["Cache-Control"] = "no-store"
    return AgentSessionCreated(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
    )


@router.post("/agent-sessions", summary="Agent log-in", responses=problem_responses(401, 413, 422, 429))
async def agent_log_in(body: AgentSessionRequest, identity: IdentityDep, response: Response) -> AgentSessionCreated:
    """E-mail, password and the authenticator's current 6-digit code (a code serves once).
    One 401 `invalid_credentials` for whatever is wrong; 429 `too_many_attempts` as for members
    (per e-mail). The session lasts a working day at most (`IDENTITY_AGENT_SESSION_TTL_HOURS`)."""
    return _created(await agents.log_in(identity, body.email, body.password, body.totp_code), response)


@router.post("/agent-sessions/refresh", summary="Renew my agent access token", responses=problem_responses(401, 413, 422, 429))
async def agent_refresh(body: AgentRefreshRequest, identity: IdentityDep, response: Response) -> AgentSessionCreated:
    """As for members: the refresh token is spent; a spent one presented again ends the session."""
    return _created(await agents.refresh(identity, body.refresh_token), response)


@router.delete(
    "/backoffice/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Agent log-out",
    responses=problem_responses(401),
)
async def agent_log_out(principal: CurrentAgentSession, identity: IdentityDep) -> Response:
    await agents.log_out(identity, principal.agent_id, principal.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AgentMe(BaseModel):
    agent_id: uuid.UUID
    email: str
    name: str


@router.get("/backoffice/me", summary="The agent I am logged in as", responses=problem_responses(401))
async def agent_me(principal: CurrentAgentSession, identity: IdentityDep) -> AgentMe:
    agent = await agents.agent_view(identity, principal.agent_id, principal.session_id)
    return AgentMe(agent_id=agent.id, email=agent.email, name=agent.name)
