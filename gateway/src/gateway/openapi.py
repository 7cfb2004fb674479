"""One OpenAPI document for the whole public API, merged from the services' own documents.

Kept: the services' /api/v1/* paths. Components are merged by name; two services that define
the same name with different content keep both, the later one renamed `<service>_<Name>` (its
$refs rewritten). Added: the bearer security scheme on every protected operation, and the
problem+json answers the gateway itself gives (400, 401, 404, 413, 429, 502, 503, 504). The
methods each path declares also tell the proxy which requests get its own 405.

Fetched at start-up and refetched periodically (sooner while a service is missing); a service
that is down is simply absent until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
from typing import Any

import aiohttp

from gateway.config import GatewaySettings
from gateway.routes import API_PREFIX, PUBLIC_ROUTES, RATE_LIMITED
from shared.platform.problems import PROBLEM_JSON, Problem

log = logging.getLogger("gateway.openapi")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COMPONENT_KINDS = (
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
)
BEARER = "bearerAuth"

_GATEWAY_ANSWERS = {
    "400": "En-tête Content-Length illisible (code `bad_request`).",
    "401": "Jeton d'accès absent, expiré ou invalide (code `invalid_token`).",
    "404": "Aucune ressource à cette adresse (code `not_found`).",
    "413": "Corps de requête trop volumineux (code `payload_too_large`).",
    "429": "Trop de requêtes ; l'en-tête Retry-After dit quand réessayer (code `too_many_requests`).",
    "502": "Service momentanément indisponible (code `upstream_unavailable`).",
    "503": "La passerelle démarre ou s'arrête ; l'en-tête Retry-After dit quand réessayer (code `service_unavailable`).",
    "504": "Le service a mis trop de temps à répondre (code `upstream_timeout`).",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Secondes avant de réessayer.", "schema": {"type": "integer"}},
}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """A copy of `node` with every "#/components/<kind>/<name>" $ref renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value in renames:
                out[key] = renames[value]
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge_documents(
    documents: dict[str, dict[str, Any]],
    *,
    title: str = "Espace — API",
    version: str = "1.0.0",
    public_routes: frozenset[tuple[str, str]] = PUBLIC_ROUTES,
    rate_limited: frozenset[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Merge the services' documents (in the given order) into one."""
    limited = rate_limited if rate_limited is not None else frozenset(RATE_LIMITED)
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "L'API publique de l'espace adhérent. Erreurs au format RFC 9457 (application/problem+json) "
            "avec un `code` stable.",
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    components: dict[str, dict[str, Any]] = merged["components"]
    tag_names: set[str] = set()

    for service, document in documents.items():
        source_components: dict[str, dict[str, Any]] = document.get("components") or {}
        # Rename what collides, until stable: a schema that refers to a renamed one differs from
        # the merged schema of the same name once its refs are rewritten, so it is renamed too.
        renames: dict[str, str] = {}
        changed = True
        while changed:
            changed = False
            for kind in COMPONENT_KINDS:
                for name, content in (source_components.get(kind) or {}).items():
                    ref = f"#/components/{kind}/{name}"
                    existing = components.get(kind, {}).get(name)
                    if ref in renames or existing is None:
                        continue
                    if existing != _rewrite_refs(content, renames):
                        free = _free_name(components, source_components, kind, service, name, renames)
                        renames[ref] = f"#/components/{kind}/{free}"
                        changed = True
        for kind in COMPONENT_KINDS:
            for name, content in (source_components.get(kind) or {}).items():
                final = renames.get(f"#/components/{kind}/{name}", f"#/components/{kind}/{name}").rsplit("/", 1)[1]
                components.setdefault(kind, {}).setdefault(final, _rewrite_refs(content, renames))

        for path, item in (document.get("paths") or {}).items():
            if not path.startswith(API_PREFIX) or path in merged["paths"]:
                continue
            merged["paths"][path] = _rewrite_refs(item, renames)
        for tag in document.get("tags") or []:
            if tag.get("name") not in tag_names:
                tag_names.add(tag.get("name"))
                merged["tags"].append(tag)

    _add_gateway_contract(merged, public_routes, limited)
    if not merged["tags"]:
        del merged["tags"]
    return merged


def _free_name(
    components: dict[str, dict[str, Any]],
    source: dict[str, dict[str, Any]],
    kind: str,
    service: str,
    name: str,
    renames: dict[str, str],
) -> str:
    taken = set(components.get(kind, {})) | set(source.get(kind) or {})
    taken |= {r.rsplit("/", 1)[1] for r in renames.values() if r.startswith(f"#/components/{kind}/")}
    candidate = f"{service}_{name}"
    n = 2
    while candidate in taken:
        candidate = f"{service}_{name}_{n}"
        n += 1
    return candidate


def _add_gateway_contract(
    merged: dict[str, Any], public_routes: frozenset[tuple[str, str]], limited: frozenset[tuple[str, str]]
) -> None:
    components = merged["components"]
    schemas = components.setdefault("schemas", {})
    problem_ref = _problem_schema(schemas)
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Jeton d'accès délivré par POST /api/v1/identity/sessions.",
    }
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": problem_ref}}}
    for path, item in merged["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            key = (method.upper(), path)
            public = key in public_routes
            responses = operation.setdefault("responses", {})
            statuses = ["400", "404", "502", "503", "504"]
            if method in ("post", "put", "patch"):
                statuses.append("413")
            if not public:
                statuses.append("401")
                operation["security"] = [{BEARER: []}]
            if key in limited:
                statuses.append("429")
            for status in sorted(statuses):
                if status not in responses:
                    answer: dict[str, Any] = {
                        "description": _GATEWAY_ANSWERS[status],
                        "content": copy.deepcopy(problem_content),
                    }
                    if status in ("429", "503"):
                        answer["headers"] = copy.deepcopy(_RETRY_AFTER)
                    responses[status] = answer


def _problem_schema(schemas: dict[str, Any]) -> str:
    """The services document their errors with shared's Problem model; reuse theirs when it is
    there, else add it (and FieldError) from the model itself."""
    if "Problem" in schemas:
        return "#/components/schemas/Problem"
    generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    name = "Problem" if "Problem" not in schemas else "GatewayProblem"
    schemas[name] = generated
    return f"#/components/schemas/{name}"


class PathMethods:
    """The methods the merged document declares at each path (HEAD along with GET), so the
    gateway answers 405 itself for any other method, before asking for a token: the document
    is public, so this tells a caller nothing it could not read there."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.exact: dict[str, frozenset[str]] = {}
        self.templated: list[tuple[re.Pattern[str], frozenset[str]]] = []
        for path, item in (document.get("paths") or {}).items():
            methods = {m.upper() for m in HTTP_METHODS if isinstance(item.get(m), dict)}
            if "GET" in methods:
                methods.add("HEAD")
            if "{" in path:
                pattern = "/".join(
                    "[^/]+" if s.startswith("{") and s.endswith("}") else re.escape(s) for s in path.split("/")
                )
                self.templated.append((re.compile(pattern), frozenset(methods)))
            else:
                self.exact[path] = frozenset(methods)

    def at(self, path: str) -> frozenset[str] | None:
        """The methods declared at `path`, or None when the document does not know the path
        (a service not merged yet: the request goes on as before)."""
        methods = self.exact.get(path)
        if methods is not None:
            return methods
        for pattern, methods in self.templated:
            if pattern.fullmatch(path):
                return methods
        return None


class OpenApiAggregator:
    """Keeps the merged document: a background refresh loop, plus an on-demand refresh when the
    cached one is stale or incomplete (bounded by the fetch timeout)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.services = settings.service_urls()
        self.refresh_s = settings.openapi_refresh_s
        self.retry_s = settings.openapi_retry_s
        self.timeout = aiohttp.ClientTimeout(total=settings.openapi_fetch_timeout_s)
        self.documents: dict[str, dict[str, Any]] = {}
        self.merged: dict[str, Any] = merge_documents({})
        self.methods = PathMethods(self.merged)
        self.fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def complete(self) -> bool:
        return set(self.documents) == set(self.services)

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._task = asyncio.create_task(self._loop(), name="openapi-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_s if self.complete else self.retry_s)

    async def current(self) -> dict[str, Any]:
        stale = time.monotonic() - self.fetched_at > (self.refresh_s if self.complete else self.retry_s)
        if stale and self._session is not None:
            await self.refresh()
        return self.merged

    async def refresh(self) -> None:
        if self._session is None:
            return
        async with self._lock:
            results = await asyncio.gather(*(self._fetch(name, url) for name, url in self.services.items()))
            for name, document in zip(self.services, results, strict=True):
                if document is not None:
                    self.documents[name] = document
            # Keep the services' order (identity first) whatever answered when.
            self.merged = merge_documents({n: self.documents[n] for n in self.services if n in self.documents})
            self.methods = PathMethods(self.merged)
            self.fetched_at = time.monotonic()

    async def _fetch(self, name: str, base_url: str) -> dict[str, Any] | None:
        assert self._session is not None
        try:
            async with self._session.get(base_url + "/openapi.json", timeout=self.timeout) as response:
                if response.status != 200:
                    raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
                document = await response.json(content_type=None)
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
                return document
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            if name not in self.documents:
                log.info(
                    "openapi of a service not available yet", extra={"upstream": name, "error_type": type(exc).__name__}
                )
            return None
