"""claims's member API: guarantees, beneficiaries, reimbursement lines and reports. Routes only
translate requests into use-case calls; visibility is checked in the use cases."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from claims.domain.plans import PlanCatalog
from claims.service_layer import reimbursements
from claims.entrypoints import PoolDep
from shared.platform.app import RuntimeDep, json_answer
from shared.platform.auth import CurrentMember
from shared.platform.inputs import IsoDate, RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/claims", tags=["claims"])


async def get_catalog(request: Request) -> PlanCatalog:
    return request.app.state.catalog


CatalogDep = Annotated[PlanCatalog, Depends(get_catalog)]


@router.get("/guarantees", summary="My plan's guarantees, with what is consumed and what remains of each ceiling",
            responses=problem_responses(401, 404))
async def get_guarantees(member: CurrentMember, runtime: RuntimeDep, catalog: CatalogDep) -> dict[str, Any]:
    return await reimbursements.guarantees(runtime.db, catalog, member.member_id, date.today())


@router.get("/beneficiaries", summary="The contract's beneficiaries I may see", response_model=dict[str, Any],
            responses=problem_responses(401, 404))
async def get_beneficiaries(member: CurrentMember, reads: PoolDep) -> Response:
    return json_answer({"items": await reimbursements.beneficiaries(reads, member.member_id)})


@router.get("/reimbursements", summary="My reimbursement lines, newest first (cursor-paged), with the period's totals",
            response_model=dict[str, Any], responses=problem_responses(401, 422))
async def list_reimbursements(
    member: CurrentMember,
    reads: PoolDep,
    start: Annotated[IsoDate | None, Query(alias="from", description="Care dates from (AAAA-MM-JJ)")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Care dates up to (AAAA-MM-JJ)")] = None,
    beneficiary: Annotated[uuid.UUID | None, Query(description="A beneficiary's member id")] = None,
    category: Annotated[str | None, Query(max_length=40, description="soins_courants, pharmacie, hospitalisation, optique, dentaire, audiologie, medecines_douces")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    return json_answer(await reimbursements.list_lines(
        reads, member.member_id, reimbursements.LineFilter(start, end, beneficiary, category), cursor, limit
    ))


@router.get("/reimbursements/{line_id}", summary="One reimbursement line: its claim, status history and guarantee",
            responses=problem_responses(401, 404, 422))
async def get_reimbursement(line_id: uuid.UUID, member: CurrentMember, runtime: RuntimeDep, catalog: CatalogDep) -> dict[str, Any]:
    return await reimbursements.line_detail(runtime.db, catalog, member.member_id, line_id)


class Report(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"comment": "Je n'ai pas consulté ce jour-là."}})

    comment: Annotated[str, Field(max_length=1000)] | None = Field(default=None, description="Optional, 1000 characters at most")


class ReportAccepted(BaseModel):
    dispute_id: uuid.UUID
    status: str = "received"
    detail: str


@router.post("/reimbursements/{line_id}/reports", status_code=status.HTTP_202_ACCEPTED,
             summary="Report a reimbursement I do not recognise", responses=problem_responses(401, 404, 413, 422))
async def report_reimbursement(line_id: uuid.UUID, member: CurrentMember, runtime: RuntimeDep, body: Report | None = None) -> ReportAccepted:
    dispute_id = await reimbursements.report_line(runtime.db, member.member_id, line_id, body.comment if body else None)
    return ReportAccepted(
        dispute_id=dispute_id,
        detail="Votre signalement a été transmis à votre centre de gestion, qui reviendra vers vous par la messagerie.",
    )
