"""Invoice upload (dépôt de factures): check the form and each file's real type, deduplicate by
SHA-256 per member, store the files as `pending`, and leave them to the antivirus."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from documents.adapters.multipart import SpooledFile, StreamedForm
from documents.adapters.tables import Document, Member, Submission
from documents.domain import submissions as states
from documents.domain.uploads import CARE_TYPES, parse_amount_cents, sniff
from documents.service_layer import members
from documents.service_layer.context import Documents
from shared.platform.inputs import storable
from shared.platform.problems import FieldError, ProblemError, field_error

MAX_COMMENT = 1000
UPLOAD_KINDS = ("invoice",)


@dataclass
class StoredFile:
    document: Document
    duplicate: bool


@dataclass
class UploadResult:
    submission: Submission | None
    files: list[StoredFile] = field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        return all(f.duplicate for f in self.files)


def unknown_member() -> ProblemError:
    return ProblemError(
        409, "contract_unknown", "Contrat inconnu",
        "Votre contrat n'est pas encore connu de l'espace documents. Réessayez dans quelques instants.",
    )


def check_file_types(files: list[SpooledFile]) -> None:
    refused = [f for f in files if sniff(f.head) is None]
    if refused:
        names = ", ".join(f"« {f.name} »" for f in refused)
        raise ProblemError(
            415, "unsupported_file_type", "Type de fichier non accepté",
            f"{'Les fichiers' if len(refused) > 1 else 'Le fichier'} {names} "
            f"{'ne sont pas' if len(refused) > 1 else 'n’est pas'} au format PDF, JPEG, PNG ou HEIC.",
            errors=[field_error("files", "unsupported_file_type", f"« {f.name} » : format non accepté.") for f in refused],
            extensions={"files": [f.name for f in refused]},
        )


@dataclass(frozen=True)
class InvoiceForm:
    beneficiary: Member
    care_type: str
    care_date: date
    amount_charged_cents: int | None
    comment: str | None


async def check_form(session, caller: Member, form: StreamedForm, today: date) -> InvoiceForm:
    errors: list[FieldError] = []
    fields = form.fields
    for name, value in fields.items():
        if not storable(value):
            errors.append(field_error(name, "invalid_characters", "Ce champ contient des caractères non autorisés."))
    if errors:
        raise ProblemError(422, "validation_failed", "Formulaire incomplet ou invalide", errors=errors)
    beneficiary = None
    number = (fields.get("beneficiary") or "").strip()
    if not number:
        errors.append(field_error("beneficiary", "required", "Indiquez le bénéficiaire des soins."))
    else:
        beneficiary = await members.by_membership_number(session, number)
        if beneficiary is None or beneficiary.contract_number != caller.contract_number:
            beneficiary = None
            errors.append(field_error("beneficiary", "unknown_beneficiary",
                                      "Ce numéro n'est pas celui d'un bénéficiaire de votre contrat."))
    care_type = (fields.get("care_type") or "").strip()
    if care_type not in CARE_TYPES:
        errors.append(field_error("care_type", "invalid_choice",
                                  "Choisissez le type de soins dans la liste : " + ", ".join(CARE_TYPES) + "."))
    care_date = None
    raw_date = (fields.get("care_date") or "").strip()
    try:
        care_date = date.fromisoformat(raw_date)
    except ValueError:
        errors.append(field_error("care_date", "invalid_date", "La date n'est pas valide (format attendu : AAAA-MM-JJ)."))
    else:
        if care_date > today:
            errors.append(field_error("care_date", "in_future", "La date des soins ne peut pas être dans le futur."))
        elif care_date < today - timedelta(days=2 * 365 + 1):
            errors.append(field_error("care_date", "too_old", "Les soins de plus de deux ans ne sont plus remboursables."))
    amount = None
    raw_amount = (fields.get("amount_charged") or "").strip()
    if raw_amount:
        amount = parse_amount_cents(raw_amount)
        if amount is None or amount == 0:
            errors.append(field_error("amount_charged", "invalid_amount",
                                      "Indiquez un montant en euros, par exemple 60.00."))
    comment = (fields.get("comment") or "").strip() or None
    if comment and len(comment) > MAX_COMMENT:
        errors.append(field_error("comment", "too_long", f"Le commentaire ne doit pas dépasser {MAX_COMMENT} caractères."))
    if not form.files:
        errors.append(field_error("files", "required", "Joignez au moins un justificatif."))
    if errors:
        raise ProblemError(422, "validation_failed", "Formulaire incomplet ou invalide", errors=errors)
    return InvoiceForm(beneficiary, care_type, care_date, amount, comment)


async def submit_invoices(docs: Documents, member_id: uuid.UUID, form: StreamedForm) -> UploadResult:
    unknown_fields = {f.field for f in form.files} - {"files"}
    if unknown_fields:
        raise ProblemError(422, "validation_failed", "Formulaire incomplet ou invalide",
                           errors=[field_error(n, "unknown_field", "Ce champ n'est pas attendu.") for n in unknown_fields])
    check_file_types(form.files)
    for attempt in (1, 2):
        try:
            return await _store(docs, member_id, form)
        except IntegrityError:
            if attempt == 2:  # the same file arriving twice at once: the other upload holds it
                raise ProblemError(409, "upload_in_progress", "Envoi déjà en cours",
                                   "Ce fichier est déjà en cours d'envoi. Réessayez dans quelques instants.") from None
    raise AssertionError("unreachable")


async def _store(docs: Documents, member_id: uuid.UUID, form: StreamedForm) -> UploadResult:
    now = datetime.now(UTC)
    async with docs.db.transaction() as session:
        caller = await members.get(session, member_id)
        if caller is None or not caller.contract_number:
            raise unknown_member()
        invoice = await check_form(session, caller, form, now.date())
        hashes = {f.sha256 for f in form.files}
        existing = {
            d.sha256: d
            for d in await session.exec(
                select(Document).where(Document.member_id == member_id, Document.kind == "invoice",
                                       Document.sha256.in_(hashes))
            )
        }
        new_files: dict[str, SpooledFile] = {}
        for f in form.files:
            if f.sha256 not in existing:
                new_files.setdefault(f.sha256, f)
        result = UploadResult(submission=None)
        if not new_files:
            first = existing[form.files[0].sha256]
            result.submission = await session.get(Submission, first.submission_id) if first.submission_id else None
            result.files = [StoredFile(existing[f.sha256], True) for f in form.files]
            return result
        submission = Submission(
            id=uuid.uuid4(),
            member_id=member_id,
            beneficiary_member_id=invoice.beneficiary.member_id,
            beneficiary_membership_number=invoice.beneficiary.membership_number,
            contract_number=caller.contract_number,
            care_type=invoice.care_type,
            care_date=invoice.care_date,
            amount_charged_cents=invoice.amount_charged_cents,
            comment=invoice.comment,
            status=states.SCANNING,
            status_message=states.message_for(states.SCANNING),
            created_at=now,
            updated_at=now,
        )
        session.add(submission)
        await session.flush()
        created: dict[str, Document] = {}
        for sha, f in new_files.items():
            kind = sniff(f.head)
            document_id = uuid.uuid4()
            key = f"uploads/{member_id}/{document_id}.{kind.extension}"
            document = Document(
                id=document_id, member_id=member_id, contract_number=caller.contract_number, kind="invoice",
                title="Justificatif de soins", file_name=f.name, media_type=kind.media_type, size_bytes=f.size,
                sha256=sha, storage_key=key, scan_status="pending", submission_id=submission.id, created_at=now,
            )
            session.add(document)
            created[sha] = document
        await session.flush()  # the dedupe index speaks before any file moves
        for sha, document in created.items():
            await docs.storage.put_file(document.storage_key, new_files[sha].path, document.media_type)
        result.submission = submission
        seen: set[str] = set()
        for f in form.files:
            if f.sha256 in created and f.sha256 not in seen:
                result.files.append(StoredFile(created[f.sha256], False))
            else:
                result.files.append(StoredFile(existing.get(f.sha256) or created[f.sha256], True))
            seen.add(f.sha256)
    docs.scan_wake.set()
    return result


async def submission_files(session, submission_id: uuid.UUID) -> list[Document]:
    rows = await session.exec(select(Document).where(Document.submission_id == submission_id).order_by(Document.created_at))
    return list(rows)


async def member_submissions(docs: Documents, member_id: uuid.UUID, limit: int = 50) -> list[tuple[Submission, list[Document]]]:
    async with docs.db.transaction() as session:
        subs = list(await session.exec(
            select(Submission).where(Submission.member_id == member_id).order_by(Submission.created_at.desc()).limit(limit)
        ))
        return [(s, await submission_files(session, s.id)) for s in subs]


async def member_submission(docs: Documents, member_id: uuid.UUID, submission_id: uuid.UUID):
    async with docs.db.transaction() as session:
        sub = await session.get(Submission, submission_id)
        if sub is None or sub.member_id != member_id:
            raise ProblemError(404, "not_found", "Introuvable", "Cette demande n'existe pas.")
        return sub, await submission_files(session, sub.id)
