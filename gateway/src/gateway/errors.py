"""What the gateway answers itself: problem+json (shared.platform.problems) with a stable `code`
and a French title and detail."""

from __future__ import annotations

from starlette.responses import Response

from shared.platform.problems import ProblemError, problem_response

UNAVAILABLE_TITLE = "Service momentanément indisponible"


def from_error(exc: ProblemError) -> Response:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers)


def not_found() -> Response:
    return problem_response(
        404, "not_found", "Ressource introuvable", "Cette adresse ne correspond à aucune ressource de l'API."
    )


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} Mo"
    return f"{limit / 1024:g} Ko"


def method_not_allowed(method: str, allowed: frozenset[str]) -> Response:
    return problem_response(
        405,
        "method_not_allowed",
        "Méthode non autorisée",
        f"Cette adresse n'accepte pas la méthode {method[:16]}.",
        headers={"Allow": ", ".join(sorted(allowed))},
    )


def payload_too_large(limit: int, *, close: bool = True) -> Response:
    """`close`: end the connection after the answer (the rest of the body is not wanted). Without
    it, uvicorn reads and discards what the client still sends, and the connection lives on: the
    client then surely reads the 413, where a close with unread data could reset it first."""
    return problem_response(
        413,
        "payload_too_large",
        "Requête trop volumineuse",
        f"Le contenu envoyé dépasse la taille autorisée ({_size(limit)}).",
        headers={"Connection": "close"} if close else None,
    )


def bad_content_length() -> Response:
    return problem_response(
        400,
        "bad_request",
        "Requête invalide",
        "L'en-tête Content-Length n'est pas valide.",
        headers={"Connection": "close"},
    )


def too_many_requests(retry_after_s: int) -> Response:
    return problem_response(
        429,
        "too_many_requests",
        "Trop de requêtes",
        "Vous avez fait trop de tentatives. Patientez quelques instants avant de réessayer.",
        headers={"Retry-After": str(retry_after_s)},
    )


def upstream_unavailable() -> Response:
    return problem_response(
        502, "upstream_unavailable", UNAVAILABLE_TITLE, "Le service ne répond pas. Réessayez dans quelques instants."
    )


def gateway_not_ready() -> Response:
    return problem_response(
        503,
        "service_unavailable",
        UNAVAILABLE_TITLE,
        "Le service démarre ou s'arrête. Réessayez dans quelques instants.",
        headers={"Retry-After": "1"},
    )


def upstream_timeout() -> Response:
    return problem_response(
        504,
        "upstream_timeout",
        UNAVAILABLE_TITLE,
        "Le service met trop de temps à répondre. Réessayez dans quelques instants.",
    )


def origin_not_allowed() -> Response:
    return problem_response(
        403, "origin_not_allowed", "Origine non autorisée", "Cette origine n'est pas autorisée à appeler l'API."
    )
