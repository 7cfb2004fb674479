"""The management centre's routes (agent tokens, audience espace-backoffice): letters, and the
queue of members' message threads. Every action is audited."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from documents.entrypoints.http import DocumentOut, DocumentsDep, document_out
from documents.service_layer import letters
from shared.platform.auth import CurrentAgent
from shared.platform.inputs import RequestBody
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/documents/backoffice", tags=["documents back office"])

Cents = Annotated[int, Field(ge=0, le=100_000_000)]
Number = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z]+$")]


class InstalmentIn(RequestBody):
    due_date: date
    amount_cents: Cents


class ContributionCallIn(RequestBody):
    type: Literal["contribution_call"]
    membership_number: Number
    period_start: date
    period_end: date
    amount_cents: Cents
    schedule: list[InstalmentIn] = Field(min_length=1, max_length=12)
    mandate_reference: Annotated[str, Field(min_length=1, max_length=35, pattern=r"^[0-9A-Za-z+?/:().,' -]+$")]

    def to_letter(self) -> letters.ContributionCall:
        return letters.ContributionCall(self.membership_number, self.period_start, self.period_end, self.amount_cents,
                                        [letters.Instalment(i.due_date, i.amount_cents) for i in self.schedule],
                                        self.mandate_reference)


class TaxCertificateIn(RequestBody):
    type: Literal["tax_certificate"]
    membership_number: Number
    year: Annotated[int, Field(ge=2000, le=2100)]
    contributions_cents: Cents
    responsable: bool = True

    def to_letter(self) -> letters.TaxCertificate:
        return letters.TaxCertificate(self.membership_number, self.year, self.contributions_cents, self.responsable)


LetterIn = Annotated[ContributionCallIn | TaxCertificateIn, Field(discriminator="type")]


@router.post("/letters", status_code=201, response_model=DocumentOut, responses=problem_responses(413, 422),
             summary="Issue a letter (contribution call or tax certificate) to a member")
async def issue_letter(body: Annotated[LetterIn, Body()], agent: CurrentAgent, docs: DocumentsDep) -> DocumentOut:
    document = await letters.issue_letter(docs, body.to_letter(), agent_id=agent.agent_id)
    return document_out(document)
