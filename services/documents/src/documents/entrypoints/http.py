"""documents's member API: invoice upload, the member's documents and their download links.
Routes only translate requests into use-case calls and back."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from documents.adapters.multipart import parse_streamed_form
from documents.adapters.tables import Document, Submission
from documents.domain.uploads import CARE_TYPES
from documents.service_layer import library, uploads
from documents.service_layer.context import Documents
from shared.platform.auth import CurrentMember
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
# Registered after the card, messages and back-office routers: /{document_id} comes last.
documents_router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


async def get_documents(request: Request) -> Documents:
    return request.app.state.documents


DocumentsDep = Annotated[Documents, Depends(get_documents)]


class FileOut(BaseModel):
    document_id: uuid.UUID
    file_name: str
    media_type: str
    size_bytes: int
    sha256: str
    scan_status: str = Field(description="pending, clean, infected or error (infected and error are quarantined)")
    duplicate: bool = Field(description="True when this exact file was already sent by you: the earlier document stands")


class SubmissionOut(BaseModel):
    submission_id: uuid.UUID | None
    status: str = Field(description="scanning, quarantined, submitted, received, in_review, settled, rejected")
    status_message: str = Field(description="The status in words, in French")
    duplicate: bool = Field(description="Every file was already sent: no new claim was started")
    beneficiary: str | None
    care_type: str | None
    care_date: date | None
    amount_charged_cents: int | None
    claim_id: uuid.UUID | None
    created_at: datetime | None
    files: list[FileOut]


def _file(document: Document, duplicate: bool = False) -> FileOut:
    return FileOut(document_id=document.id, file_name=document.file_name, media_type=document.media_type,
                   size_bytes=document.size_bytes, sha256=document.sha256, scan_status=document.scan_status,
                   duplicate=duplicate)


def _submission(sub: Submission | None, files: list[FileOut], duplicate: bool = False) -> SubmissionOut:
    message = sub.status_message if sub else ""
    if duplicate:
        message = ("Ces justificatifs nous ont déjà été envoyés : aucune nouvelle demande n'est créée. "
                   + (message or ""))
    return SubmissionOut(
        submission_id=sub.id if sub else None, status=sub.status if sub else "submitted", status_message=message.strip(),
        duplicate=duplicate, beneficiary=sub.beneficiary_membership_number if sub else None,
        care_type=sub.care_type if sub else None, care_date=sub.care_date if sub else None,
        amount_charged_cents=sub.amount_charged_cents if sub else None, claim_id=sub.claim_id if sub else None,
        created_at=sub.created_at if sub else None, files=files,
    )


UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files", "beneficiary", "care_type", "care_date"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1,
                                  "maxItems": 5, "description": "1 to 5 files (PDF, JPEG, PNG, HEIC), 5 MB each, 15 MB in all"},
                        "beneficiary": {"type": "string", "description": "Membership number of a beneficiary of your contract"},
                        "care_type": {"type": "string", "enum": list(CARE_TYPES)},
                        "care_date": {"type": "string", "format": "date"},
                        "amount_charged": {"type": "string", "description": 'Euros, e.g. "60.00"'},
                        "comment": {"type": "string", "maxLength": uploads.MAX_COMMENT},
                    },
                }
            }
        },
    }
}


@router.post(
    "/invoices",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionOut,
    summary="Send invoices (dépôt de factures): scanned, then passed on to claims",
    openapi_extra=UPLOAD_DOC,
    responses={200: {"model": SubmissionOut, "description": "Every file was already sent: no new claim"},
               **problem_responses(400, 409, 413, 415, 422)},
)
async def upload_invoices(request: Request, principal: CurrentMember, docs: DocumentsDep):
    s = docs.settings
    form = await parse_streamed_form(request, spool=s.spool, file_field="files", max_files=s.max_files,
                                     max_file_bytes=s.max_file_bytes, max_request_bytes=s.max_request_bytes)
    try:
        result = await uploads.submit_invoices(docs, principal.member_id, form)
    finally:
        form.cleanup()
    body = _submission(result.submission, [_file(f.document, f.duplicate) for f in result.files], result.duplicate)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.duplicate else 202)


@router.get("/invoices/care-types", summary="The care types an invoice may be sent for")
async def care_types() -> dict[str, str]:
    return CARE_TYPES


@router.get("/submissions", response_model=list[SubmissionOut], summary="Your invoice submissions, newest first")
async def list_submissions(principal: CurrentMember, docs: DocumentsDep) -> list[SubmissionOut]:
    return [_submission(sub, [_file(d) for d in files]) for sub, files in await uploads.member_submissions(docs, principal.member_id)]


@router.get("/submissions/{submission_id}", response_model=SubmissionOut, responses=problem_responses(404),
            summary="One submission and its status")
async def get_submission(submission_id: uuid.UUID, principal: CurrentMember, docs: DocumentsDep) -> SubmissionOut:
    sub, files = await uploads.member_submission(docs, principal.member_id, submission_id)
    return _submission(sub, [_file(d) for d in files])


class DocumentOut(BaseModel):
    id: uuid.UUID
    type: str = Field(description="invoice, statement, contribution_call, tax_certificate, message_attachment…")
    title: str
    file_name: str
    media_type: str
    size_bytes: int | None = Field(description="null while the file is being prepared (it is rendered when downloaded)")
    pages: int | None
    status: str = Field(description="pending, clean (downloadable), infected or error (quarantined)")
    delivery: str | None = Field(description="online or post, for documents we issued")
    replaced: bool
    created_at: datetime


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


def document_out(d: Document) -> DocumentOut:
    return DocumentOut(id=d.id, type=d.kind, title=d.title, file_name=d.file_name, media_type=d.media_type,
                       size_bytes=d.size_bytes, pages=d.pages, status=d.scan_status, delivery=d.delivery,
                       replaced=d.replaced_at is not None, created_at=d.created_at)


@router.get("", response_model=DocumentPage, responses=problem_responses(422), summary="Your documents, newest first")
async def list_documents(
    principal: CurrentMember,
    docs: DocumentsDep,
    type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    period: Annotated[str | None, Query(pattern=r"^\d{4}(-\d{2})?$", description="AAAA or AAAA-MM")] = None,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DocumentPage:
    page = await library.list_documents(docs, principal.member_id, kind=type, period=period, cursor=cursor, limit=limit)
    return DocumentPage(items=[document_out(d) for d in page.items], next_cursor=page.next_cursor)


class DownloadLink(BaseModel):
    url: str = Field(description="Path on the gateway; follow it without a bearer token")
    expires_at: datetime


@router.get("/downloads/{token}", summary="A file, from a signed link (no bearer token)",
            responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(404, 409, 410, 503)})
async def download(token: Annotated[str, Path(max_length=300)], docs: DocumentsDep) -> Response:
    document = await library.open_link(docs, token)
    ascii_name = document.file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(document.file_name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Length": str(document.size_bytes),
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return StreamingResponse(docs.storage.read(document.storage_key), media_type=document.media_type, headers=headers)


@documents_router.get("/{document_id}", response_model=DocumentOut, responses=problem_responses(404),
                      summary="One of your documents (metadata)")
async def get_document(document_id: uuid.UUID, principal: CurrentMember, docs: DocumentsDep) -> DocumentOut:
    return document_out(await library.get_document(docs, principal.member_id, document_id))


@documents_router.post("/{document_id}/download-links", response_model=DownloadLink, status_code=201,
                       responses=problem_responses(404, 409), summary="A signed download link, valid 5 minutes")
async def create_download_link(document_id: uuid.UUID, principal: CurrentMember, docs: DocumentsDep) -> DownloadLink:
    url, expires = await library.create_link(docs, principal.member_id, document_id)
    return DownloadLink(url=url, expires_at=expires)


class CardOut(BaseModel):
    version: int
    issued_at: datetime
    amc_number: str
    convention_type: str
    routing_code: str
    membership_number: str
    contract_number: str
    valid_from: date
    valid_to: date
    responsable: bool = Field(description='The "R" of a contrat responsable')
    plan_code: str | None
    beneficiaries: list[dict] = Field(description="name, birth_date, membership_number, rank")
    domains: list[dict] = Field(description="code (PHAR, MED, LABO, RADL, AUXM, DENT, OPTI, HOSP), label, level")
    datamatrix_payload: str = Field(description="The Data Matrix's text (format in services/documents/README.md)")
    pdf_url: str = Field(description="Signed link (5 minutes) to the card as PDF")
    png_url: str = Field(description="Signed link (5 minutes) to the Data Matrix as PNG")
    links_expire_at: datetime


@router.get("/card", response_model=CardOut, responses=problem_responses(404, 503),
            summary="The contract's current tiers-payant card, with links to its PDF and Data Matrix PNG")
async def get_card(principal: CurrentMember, docs: DocumentsDep) -> CardOut:
    from documents.service_layer import rendering

    card = await rendering.current_card(docs, principal.member_id)
    pdf_url, expires = library.link_for(docs, principal.member_id, card.pdf_document_id)
    png_url, _ = library.link_for(docs, principal.member_id, card.png_document_id)
    return CardOut(version=card.version, issued_at=card.issued_at, **card.content, datamatrix_payload=card.payload,
                   pdf_url=pdf_url, png_url=png_url, links_expire_at=expires)
