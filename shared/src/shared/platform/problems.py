"""RFC 9457 problem+json errors with a stable `code` and field-level messages in French."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """The body of every error answer (documented in each service's OpenAPI)."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[FieldError] = []


@dataclass
class ProblemError(Exception):
    status: int
    code: str
    title: str
    detail: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] | None = None
    # Extra members of the problem body (RFC 9457 §3.2), e.g. {"resend_possible": True}. They
    # never override the standard members.
    extensions: dict[str, Any] | None = None


def field_error(field_name: str, code: str, message: str) -> FieldError:
    return FieldError(field=field_name, code=code, message=message)


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"https://espace.example/problems/{code}",
        title=title,
        status=status,
        code=code,
        detail=detail,
        errors=errors or [],
    )
    content = body.model_dump(mode="json", exclude_none=True)
    if extensions:
        content |= {k: v for k, v in extensions.items() if k not in Problem.model_fields}
    return JSONResponse(
        content,
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# Pydantic error types → (stable code, French message). Anything not listed falls back to a
# generic "valeur invalide" so a member never sees an English library message.
_FRENCH: dict[str, tuple[str, str]] = {
    "missing": ("required", "Ce champ est obligatoire."),
    "string_type": ("invalid_type", "Ce champ doit être un texte."),
    "string_too_short": ("too_short", "Ce champ est trop court."),
    "string_too_long": ("too_long", "Ce champ est trop long."),
    # The same limits on a constrained type behind a BeforeValidator (pydantic ≥ 2.12 names them so).
    "too_short": ("too_short", "Ce champ est trop court."),
    "too_long": ("too_long", "Ce champ est trop long."),
    "string_pattern_mismatch": ("invalid_format", "Le format de ce champ n'est pas valide."),
    "bool_type": ("invalid_type", "Ce champ doit valoir vrai ou faux."),
    "bool_parsing": ("invalid_type", "Ce champ doit valoir vrai ou faux."),
    "date_type": ("invalid_date", "La date n'est pas valide (format attendu : AAAA-MM-JJ)."),
    "date_parsing": ("invalid_date", "La date n'est pas valide (format attendu : AAAA-MM-JJ)."),
    "date_from_datetime_parsing": ("invalid_date", "La date n'est pas valide (format attendu : AAAA-MM-JJ)."),
    "date_from_datetime_inexact": ("invalid_date", "La date n'est pas valide (format attendu : AAAA-MM-JJ)."),
    "value_error": ("invalid", "La valeur de ce champ n'est pas valide."),
    "json_invalid": ("invalid_json", "Le corps de la requête n'est pas un JSON valide."),
    "model_attributes_type": ("invalid_type", "Le corps de la requête doit être un objet JSON."),
    "dict_type": ("invalid_type", "Le corps de la requête doit être un objet JSON."),
    "int_type": ("invalid_type", "Ce champ doit être un nombre entier."),
    "int_parsing": ("invalid_type", "Ce champ doit être un nombre entier."),
    "uuid_parsing": ("invalid_format", "Cet identifiant n'est pas valide."),
    "uuid_type": ("invalid_format", "Cet identifiant n'est pas valide."),
    "extra_forbidden": ("unknown_field", "Ce champ n'est pas attendu."),
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_errors_to_fields(errors: list[dict[str, Any]]) -> list[FieldError]:
    fields: list[FieldError] = []
    for err in errors:
        ctx = err.get("ctx") or {}
        # Our own validators raise ValueError("code|message en français").
        raw = ctx.get("error")
        if raw is not None and "|" in str(raw):
            code, message = str(raw).split("|", 1)
        else:
            code, message = _FRENCH.get(err["type"], ("invalid", "La valeur de ce champ n'est pas valide."))
        fields.append(FieldError(field=_field_name(tuple(err["loc"])), code=code, message=message))
    return fields


_STATUS_CODES = {
    400: ("bad_request", "Requête invalide"),
    401: ("unauthorized", "Authentification requise"),
    403: ("forbidden", "Accès refusé"),
    404: ("not_found", "Ressource introuvable"),
    405: ("method_not_allowed", "Méthode non autorisée"),
    409: ("conflict", "Conflit"),
    413: ("payload_too_large", "Requête trop volumineuse"),
    415: ("unsupported_media_type", "Type de contenu non pris en charge"),
    429: ("too_many_requests", "Trop de requêtes"),
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers, exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            "validation_failed",
            "Certains champs ne sont pas valides",
            "Corrigez les champs signalés puis réessayez.",
            validation_errors_to_fields(list(exc.errors())),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "Erreur"))
        return problem_response(exc.status_code, code, title, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return problem_response(
            500, "internal_error", "Erreur interne", "Une erreur inattendue est survenue. Réessayez plus tard."
        )


# For `responses=` in route declarations, so the OpenAPI documents every status a route returns.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}
