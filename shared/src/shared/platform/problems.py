"""RFC 9457 problem+json errors with a stable `code` and field-level messages in French."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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
    # A lone surrogate ("\ud800" in JSON): no UTF-8 form (shared.platform.inputs says the same).
    "string_unicode": ("invalid_characters", "Ce champ contient des caractères non autorisés."),
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


# The (code, message) pairs of the request model's own refusals, before any business rule.
REQUEST_MODEL_ERRORS: frozenset[tuple[str, str]] = frozenset(_FRENCH.values())


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
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _FASTAPI_UNPARSABLE_BODY:
            # A body json.loads could not even decode (not UTF-8/16/32, or nested too deep):
            # to the client, the same as malformed JSON, a 422 naming the body.
            return _unreadable_body()
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette lists only the first route matching the path; a path served by several
            # routes (GET and PATCH /me/profile) allows all of their methods.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "Erreur"))
        return problem_response(exc.status_code, code, title, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if dependency_unreachable(exc):
            # The database (or another dependency) is away for a moment: a retry will work, which
            # a 500 does not say. Nothing was written: the transaction did not commit.
            log.warning("dependency unreachable", extra={"error_type": type(exc).__name__})
            return problem_response(503, "service_unavailable", "Service momentanément indisponible",
                                    "Le service est momentanément indisponible. Réessayez dans quelques instants.",
                                    headers={"Retry-After": "5"})
        log.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return problem_response(
            500, "internal_error", "Erreur interne", "Une erreur inattendue est survenue. Réessayez plus tard."
        )


_FASTAPI_UNPARSABLE_BODY = "There was an error parsing the body"
# SQLSTATE class 08 (connection exception), and an administrator's shutdown or a server starting up.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def dependency_unreachable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says a dependency could not be reached: a refused or
    reset connection, a PostgreSQL connection lost or not yet accepting, a pool invalidated.
    Duck-typed on asyncpg's `sqlstate` and SQLAlchemy's `connection_invalidated`, so this module
    imports no database driver."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError)) or getattr(current, "connection_invalidated", False):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if type(current).__name__ == "ConnectionDoesNotExistError":  # asyncpg: the server closed it
            return True
        current = current.__cause__ or current.__context__
    return False


def _unreadable_body() -> JSONResponse:
    code, message = _FRENCH["json_invalid"]
    return problem_response(
        422,
        "validation_failed",
        "Certains champs ne sont pas valides",
        "Corrigez les champs signalés puis réessayez.",
        [FieldError(field="body", code=code, message=message)],
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path (HEAD with GET)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


PROBLEM_REF = "#/components/schemas/Problem"
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


# For `responses=` in route declarations, so the OpenAPI documents every status a route returns.
# The Problem schema itself is added to the document by `document_problems` (ServiceRuntime does).
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"content": copy.deepcopy(_PROBLEM_CONTENT)} for s in statuses}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document tell the truth about errors, whatever the routes declared: every
    4xx/5xx answer is application/problem+json with the Problem schema (FastAPI's default 422,
    HTTPValidationError as application/json, included), and the Problem and FieldError schemas
    are in the components. Changes `document` in place and returns it."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        schemas[name] = definition
    schemas["Problem"] = generated
    for item in (document.get("paths") or {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for status, answer in (operation.get("responses") or {}).items():
                if str(status)[0] in "45" or status == "default":
                    answer["content"] = copy.deepcopy(_PROBLEM_CONTENT)
                    if answer.get("description") in (None, "Validation Error"):
                        answer["description"] = "Problème (RFC 9457)"
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now unreferenced
        if f'"#/components/schemas/{unused}"' not in json.dumps(document):
            schemas.pop(unused, None)
    return document
