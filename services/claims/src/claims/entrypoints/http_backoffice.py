"""The back office for management-centre agents (agent tokens only: audience espace-backoffice,
role agent; a member token is refused here, in claims itself)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field, StrictBool, model_validator

from claims.entrypoints.http import CatalogDep
from claims.service_layer import backoffice
from shared.platform.app import RuntimeDep
from shared.platform.auth import CurrentAgent
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/claims/backoffice", tags=["claims back office"])

Cents = Annotated[int, Field(ge=0, le=100_000_000)]


class InvoiceLineIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    act_code: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_]+$")]
    act_label: Annotated[str, Field(min_length=1, max_length=200)]
    care_date: date | None = Field(default=None, description="The claim's care date when left out")
    quantity: Annotated[int, Field(ge=1, le=999)] = 1
    amount_charged_cents: Cents
    secu_base_cents: Cents = 0
    secu_rate_pct: Annotated[int, Field(ge=0, le=100)] = 0
    secu_paid_cents: Cents = 0
    participation_cents: Cents = 0
    practitioner_id: Annotated[str, Field(max_length=32)] | None = None
    practitioner_sector: Literal[1, 2, 3] | None = None
    optam: StrictBool | None = None
    payee: Literal["member", "practitioner"] = "member"

    @model_validator(mode="after")
    def _secu_within_charged(self):
        if self.secu_paid_cents + self.participation_cents > self.amount_charged_cents:
            raise ValueError("secu_exceeds_charged|La part Sécu et la participation dépassent le montant facturé.")
        return self


class ValuationIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    lines: Annotated[list[InvoiceLineIn], Field(min_length=1, max_length=50)]


class RejectionIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    reason_code: Literal["missing_document", "not_covered", "ceiling_reached", "renewal_period", "duplicate"]
    comment: Annotated[str, Field(max_length=1000)] | None = None


@router.get("/claims", summary="Claims by status (oldest first)", responses=problem_responses(401, 422))
async def list_claims(
    agent: CurrentAgent, runtime: RuntimeDep,
    status: Annotated[str, Query(max_length=40)] = "needs_review",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await backoffice.list_claims(runtime.db, agent.agent_id, status, cursor, limit)


@router.get("/claims/{claim_id}", summary="One claim, its lines and history", responses=problem_responses(401, 404, 422))
async def get_claim(claim_id: uuid.UUID, agent: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    return await backoffice.get_claim(runtime.db, agent.agent_id, claim_id)


@router.post("/claims/{claim_id}/valuation", summary="Value a paper claim from the invoice's lines",
             responses=problem_responses(401, 404, 409, 413, 422))
async def value_claim(claim_id: uuid.UUID, body: ValuationIn, agent: CurrentAgent, runtime: RuntimeDep, catalog: CatalogDep) -> dict[str, Any]:
    lines = [backoffice.InvoiceLine(**line.model_dump()) for line in body.lines]
    return await backoffice.value_claim(runtime.db, catalog, agent.agent_id, claim_id, lines)


@router.post("/claims/{claim_id}/rejection", summary="Reject a paper claim with a reason code",
             responses=problem_responses(401, 404, 409, 413, 422))
async def reject_claim(claim_id: uuid.UUID, body: RejectionIn, agent: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    return await backoffice.reject_claim(runtime.db, agent.agent_id, claim_id, body.reason_code, body.comment)


@router.get("/disputes", summary="Members' reports of reimbursements they do not recognise", responses=problem_responses(401, 422))
async def list_disputes(agent: CurrentAgent, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    return await backoffice.list_disputes(runtime.db, agent.agent_id, limit)
