"""Letters issued through the back office or the batch command: the contribution call (appel de
cotisation, with its SEPA direct-debit schedule) and the yearly tax certificate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from documents.adapters.tables import Document
from documents.service_layer import audit, issuing, members
from documents.service_layer.context import Documents
from shared.platform.problems import ProblemError, field_error


@dataclass(frozen=True)
class Instalment:
    due_date: date
    amount_cents: int


@dataclass(frozen=True)
class ContributionCall:
    membership_number: str
    period_start: date
    period_end: date
    amount_cents: int
    schedule: list[Instalment]
    mandate_reference: str


@dataclass(frozen=True)
class TaxCertificate:
    membership_number: str
    year: int
    contributions_cents: int
    responsable: bool = True


Letter = ContributionCall | TaxCertificate


def _invalid(field: str, code: str, message: str) -> ProblemError:
    return ProblemError(422, "validation_failed", "Courrier invalide", errors=[field_error(field, code, message)])


def check(letter: Letter) -> None:
    if isinstance(letter, ContributionCall):
        if letter.period_end < letter.period_start:
            raise _invalid("period_end", "before_start", "La fin de période précède son début.")
        if not letter.schedule:
            raise _invalid("schedule", "required", "L'échéancier doit compter au moins un prélèvement.")
        if sum(i.amount_cents for i in letter.schedule) != letter.amount_cents:
            raise _invalid("schedule", "sum_mismatch", "La somme des prélèvements doit égaler le montant de la période.")


def salutation(member) -> str:
    return f"Chère adhérente, cher adhérent" if not member.first_name else f"Bonjour {member.full_name}"


async def issue_letter(docs: Documents, letter: Letter, *, agent_id: uuid.UUID | None) -> Document:
    check(letter)
    async with docs.db.transaction() as session:
        member = await members.by_membership_number(session, letter.membership_number)
        if member is None or not member.contract_number:
            raise _invalid("membership_number", "unknown_member", "Aucun adhérent ne porte ce numéro.")
        if isinstance(letter, ContributionCall):
            kind = "contribution_call"
            title = f"Appel de cotisation {letter.period_start:%m/%Y} – {letter.period_end:%m/%Y}"
            reference = f"APC-{member.contract_number}-{letter.period_start:%Y%m}"
            context = issuing.context_for(
                docs, member, title=title, reference=reference, salutation=salutation(member),
                contract_number=member.contract_number, period_start=letter.period_start, period_end=letter.period_end,
                amount_cents=letter.amount_cents, schedule=[i.__dict__ for i in letter.schedule],
                schedule_total=sum(i.amount_cents for i in letter.schedule),
                creditor_id=docs.settings.sepa_creditor_id, mandate_reference=letter.mandate_reference,
            )
            template, period, file_name = "contribution_call.html", letter.period_start, f"appel-cotisation-{letter.period_start:%Y-%m}.pdf"
        else:
            kind = "tax_certificate"
            title = f"Attestation fiscale {letter.year}"
            reference = f"ATF-{member.contract_number}-{letter.year}"
            context = issuing.context_for(
                docs, member, title=title, reference=reference, salutation=salutation(member),
                contract_number=member.contract_number, year=letter.year,
                contributions_cents=letter.contributions_cents, responsable=letter.responsable,
            )
            template, period, file_name = "tax_certificate.html", date(letter.year, 12, 31), f"attestation-fiscale-{letter.year}.pdf"
        pdf = await docs.renderer.render(template, context)
        document = await issuing.issue(docs, session, member, pdf, kind=kind, title=title, file_name=file_name, period=period)
        if agent_id is not None:
            audit.record(session, agent_id, "letter_issued", "document", document.id, kind=kind)
    return document
