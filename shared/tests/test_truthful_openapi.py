"""What every service's OpenAPI document and error answers promise, checked on a small app built
like the services are (shared problem handlers, RequestBody models, the shared openapi)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from shared.platform.app import truthful_openapi
from shared.platform.auth import CurrentMember
from shared.platform.inputs import NO_NUL_PATTERN, RequestBody
from shared.platform.problems import PROBLEM_JSON, install_problem_handlers, problem_responses

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Address(RequestBody):
    line1: str
    line2: str | None = None


class Form(RequestBody):
    name: str
    tags: list[str] = []
    address: Address | None = None
    accepted: bool = True


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    async def list_things(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/things", responses=problem_responses(409))
    async def create_thing(body: Form) -> dict[str, str]:
        return {"name": body.name}

    @app.patch("/things")
    async def change_things() -> dict[str, str]:
        return {}

    @app.get("/me")
    async def me(member: CurrentMember) -> dict[str, str]:
        return {"member": str(member.member_id)}

    app.openapi = truthful_openapi(app)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def test_every_error_is_documented_as_problem_json_and_fastapis_422_is_gone(client):
    document = client.get("/openapi.json").json()
    listing = document["paths"]["/things"]["get"]["responses"]
    assert listing["422"]["content"] == PROBLEM  # FastAPI's default 422, rewritten
    assert document["paths"]["/things"]["post"]["responses"]["409"]["content"] == PROBLEM
    schemas = document["components"]["schemas"]
    assert {"Problem", "FieldError"} <= set(schemas)
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)


def test_an_operation_that_needs_the_members_token_documents_its_401(client):
    document = client.get("/openapi.json").json()
    assert document["paths"]["/me"]["get"]["responses"]["401"]["content"] == PROBLEM
    assert "401" not in document["paths"]["/things"]["get"]["responses"]


def test_request_bodies_document_that_text_carries_no_nul(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Form"]["properties"]["name"]["pattern"] == NO_NUL_PATTERN
    assert schemas["Form"]["properties"]["tags"]["items"]["pattern"] == NO_NUL_PATTERN
    assert schemas["Address"]["properties"]["line2"]["anyOf"][0]["pattern"] == NO_NUL_PATTERN


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "a\\u0000b"}', "name"),
        ('{"name": "\\ud800"}', "name"),  # a lone surrogate: no UTF-8 form
        ('{"name": "ok", "tags": ["x", "\\u0000"]}', "tags"),
        ('{"name": "ok", "address": {"line1": "1 rue\\u0000"}}', "address.line1"),
    ],
)
def test_text_postgresql_cannot_store_is_a_422_naming_the_field(client, body, field):
    answer = client.post("/things", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [(field, "invalid_characters")]
    assert answer.json()["errors"][0]["message"] == "Ce champ contient des caractères non autorisés."


@pytest.mark.parametrize("raw", [b"\x80\x81", b"[" * 100_000 + b"]" * 100_000])
def test_a_body_json_cannot_even_decode_is_the_same_422_as_malformed_json(client, raw):
    answer = client.post("/things", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [("body", "invalid_json")]


def test_a_405_allows_every_method_the_path_has(client):
    answer = client.put("/things")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, PATCH, POST"
    assert answer.json()["code"] == "method_not_allowed"
