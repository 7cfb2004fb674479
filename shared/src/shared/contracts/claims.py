"""Events published by claims on `claims.claims.v1` (key: the contract holder's member id).

This topic carries health data (acts, care dates, amounts): only documents and notifications
read it. Money is in integer cents, never floats.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Event
from shared.contracts.topics import CLAIMS_CLAIMS


class SettledLine(BaseModel):
    """One reimbursement line as a statement (relevé de prestations) prints it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    line_id: uuid.UUID
    line_number: int
    beneficiary_member_id: uuid.UUID
    beneficiary_name: str = Field(description="First and last name, as the statement prints it")
    care_date: date
    act_code: str
    act_label: str
    quantity: int
    amount_charged_cents: int
    secu_base_cents: int
    secu_rate_pct: int
    secu_paid_cents: int
    participation_cents: int = Field(description="Participation forfaitaire and franchises (never reimbursed)")
    mutuelle_paid_cents: int
    out_of_pocket_cents: int
    payee: str = Field(description='"member" or "practitioner" (tiers payant)')
    status: str = Field(description='"paid" or "rejected"')
    rejection_reason: str | None = Field(default=None, description="Reason code when rejected")


class ClaimReceived(Event):
    """A claim arrived (a Sécu décompte or a paper claim) and is being handled."""

    event_type = "claims.ClaimReceived"
    topic = CLAIMS_CLAIMS

    claim_id: uuid.UUID
    contract_number: str
    holder_member_id: uuid.UUID
    beneficiary_member_id: uuid.UUID
    source: str = Field(description='"noemie" (Sécurité sociale feed) or "upload" (paper claim)')
    external_ref: str = Field(description="The décompte id, or the documents submission id")
    submission_id: uuid.UUID | None = Field(default=None, description="documents' submission, for paper claims")
    status: str = Field(description='"received" or "needs_review"')
    received_at: datetime


class ClaimSettled(Event):
    """A claim was valued and settled (wholly or in part): the lines documents prints on the
    statement, and what notifications needs to alert the holder and beneficiaries."""

    event_type = "claims.ClaimSettled"
    topic = CLAIMS_CLAIMS

    claim_id: uuid.UUID
    contract_number: str
    holder_member_id: uuid.UUID
    beneficiary_member_ids: list[uuid.UUID]
    source: str
    external_ref: str
    submission_id: uuid.UUID | None = None
    status: str = Field(description='"settled" or "partially_rejected"')
    lines: list[SettledLine]
    total_charged_cents: int
    total_secu_paid_cents: int
    total_mutuelle_paid_cents: int
    total_out_of_pocket_cents: int
    settled_at: datetime


class ClaimRejected(Event):
    """Every line of a claim was rejected, or an agent rejected a paper claim."""

    event_type = "claims.ClaimRejected"
    topic = CLAIMS_CLAIMS

    claim_id: uuid.UUID
    contract_number: str
    holder_member_id: uuid.UUID
    beneficiary_member_id: uuid.UUID
    source: str
    external_ref: str
    submission_id: uuid.UUID | None = None
    reason_code: str = Field(
        description="missing_document, not_covered, ceiling_reached, renewal_period, duplicate, not_covered_on_date…"
    )
    reason: str = Field(description="The reason in French, for the member")
    rejected_at: datetime


class ReimbursementDisputed(Event):
    """A member reported a reimbursement line ("je ne reconnais pas ce remboursement")."""

    event_type = "claims.ReimbursementDisputed"
    topic = CLAIMS_CLAIMS

    dispute_id: uuid.UUID
    claim_id: uuid.UUID
    line_id: uuid.UUID
    member_id: uuid.UUID = Field(description="Who reported it")
    holder_member_id: uuid.UUID
    beneficiary_member_id: uuid.UUID
    care_date: date
    act_label: str
    comment: str | None = None
    disputed_at: datetime
