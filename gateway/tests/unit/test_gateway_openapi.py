"""One OpenAPI document for the public API, merged from the services' own."""

from __future__ import annotations

from gateway.openapi import merge_documents

PROBLEM_REF = "#/components/schemas/Problem"


async def test_the_merged_document_has_the_services_api_paths_only(gateway, client):
    async with client.get(f"{gateway}/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.")
    # identity and documents serve theirs; notifications and claims serve none: left out, no error.
    assert set(document["paths"]) == {"/api/v1/identity/sessions", "/api/v1/identity/me", "/api/v1/documents/letters"}


async def test_same_name_different_content_is_kept_apart_and_refs_follow(gateway, client):
    async with client.get(f"{gateway}/openapi.json") as response:
        document = await response.json()
    schemas = document["components"]["schemas"]
    assert schemas["Item"] == {"type": "object", "properties": {"id": {"type": "string"}}}
    assert schemas["documents_Item"] == {"type": "object", "properties": {"letter_id": {"type": "integer"}}}
    assert schemas["Page"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/documents_Item"}
    letters = document["paths"]["/api/v1/documents/letters"]["get"]["responses"]["200"]
    assert letters["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Page"}
    me = document["paths"]["/api/v1/identity/me"]["get"]["responses"]["200"]
    assert me["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Item"}
    # Identical definitions (Problem in both) are shared, not duplicated.
    assert "documents_Problem" not in schemas


async def test_protected_operations_carry_bearer_security_and_the_gateways_answers(gateway, client):
    async with client.get(f"{gateway}/openapi.json") as response:
        document = await response.json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Jeton d'accès délivré par POST /api/v1/identity/sessions.",
    }
    me = document["paths"]["/api/v1/identity/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert {"401", "404", "502", "504"} <= set(me["responses"])
    assert me["responses"]["401"]["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}
    log_in = document["paths"]["/api/v1/identity/sessions"]["post"]
    assert "security" not in log_in  # public
    assert "401" not in log_in["responses"]
    assert {"413", "429", "502", "504"} <= set(log_in["responses"])
    assert "Retry-After" in log_in["responses"]["429"]["headers"]
    assert log_in["responses"]["422"]["description"] == "bad"  # the service's own answers stay


async def test_a_service_that_comes_up_later_joins_the_document(start_gateway, client, services, closed_port):
    from aiohttp import web

    async with start_gateway(claims_url=f"http://127.0.0.1:{closed_port}", openapi_retry_s=0.05) as url:
        async with client.get(f"{url}/openapi.json") as response:
            assert not any(p.startswith("/api/v1/claims") for p in (await response.json())["paths"])

        async def openapi(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "openapi": "3.1.0",
                    "paths": {"/api/v1/claims/guarantees": {"get": {"responses": {"200": {"description": "ok"}}}}},
                }
            )

        app = web.Application()
        app.router.add_get("/openapi.json", openapi)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", closed_port)
        await site.start()
        try:
            import asyncio

            for _ in range(100):
                async with client.get(f"{url}/openapi.json") as response:
                    paths = (await response.json())["paths"]
                if "/api/v1/claims/guarantees" in paths:
                    break
                await asyncio.sleep(0.05)
            assert paths["/api/v1/claims/guarantees"]["get"]["security"] == [{"bearerAuth": []}]
        finally:
            await runner.cleanup()


async def test_the_docs_page_points_at_the_merged_document(gateway, client):
    async with client.get(f"{gateway}/docs") as response:
        assert response.status == 200
        assert "/openapi.json" in await response.text()


def test_renaming_cascades_to_schemas_that_refer_to_a_renamed_one():
    first = {
        "paths": {
            "/api/v1/a/x": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Wrapper"}}},
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Inner": {"type": "string"},
                "Wrapper": {"type": "object", "properties": {"inner": {"$ref": "#/components/schemas/Inner"}}},
            }
        },
    }
    second = {
        "paths": {
            "/api/v1/b/y": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Wrapper"}}},
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Inner": {"type": "integer"},  # differs
                # Same text as first's Wrapper, but its Inner is another type: must be renamed too.
                "Wrapper": {"type": "object", "properties": {"inner": {"$ref": "#/components/schemas/Inner"}}},
            }
        },
    }
    merged = merge_documents({"a": first, "b": second}, public_routes=frozenset(), rate_limited=frozenset())
    schemas = merged["components"]["schemas"]
    assert schemas["b_Inner"] == {"type": "integer"}
    assert schemas["b_Wrapper"]["properties"]["inner"] == {"$ref": "#/components/schemas/b_Inner"}
    assert schemas["Wrapper"]["properties"]["inner"] == {"$ref": "#/components/schemas/Inner"}
    b_schema = merged["paths"]["/api/v1/b/y"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert b_schema == {"$ref": "#/components/schemas/b_Wrapper"}


def test_without_any_service_the_document_is_still_valid_and_defines_problem():
    merged = merge_documents({})
    assert merged["paths"] == {}
    assert "Problem" in merged["components"]["schemas"]
    assert "FieldError" in merged["components"]["schemas"]
    assert merged["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_operation_documents_what_the_gateway_itself_may_answer():
    document = {
        "paths": {
            "/api/v1/a/items": {
                "get": {"responses": {"200": {"description": "ok"}}},
                "post": {"responses": {"201": {"description": "made"}}},
            }
        }
    }
    merged = merge_documents({"a": document}, public_routes=frozenset(), rate_limited=frozenset())
    listing = merged["paths"]["/api/v1/a/items"]["get"]["responses"]
    assert {"400", "401", "404", "502", "503", "504"} <= set(listing)  # unreadable Content-Length, starting...
    assert "413" not in listing
    assert "Retry-After" in listing["503"]["headers"]
    assert {"400", "401", "404", "413", "502", "503", "504"} <= set(merged["paths"]["/api/v1/a/items"]["post"]["responses"])


def test_the_methods_each_path_declares_are_known_templates_included():
    from gateway.openapi import PathMethods

    methods = PathMethods(
        {
            "paths": {
                "/api/v1/a/items": {"get": {}, "post": {}, "parameters": []},
                "/api/v1/a/items/{item_id}/lines/{n}": {"delete": {}},
            }
        }
    )
    assert methods.at("/api/v1/a/items") == {"GET", "HEAD", "POST"}
    assert methods.at("/api/v1/a/items/42/lines/7") == {"DELETE"}
    assert methods.at("/api/v1/a/items/42/lines") is None
    assert methods.at("/api/v1/a/items/42/lines/7/x") is None
    assert methods.at("/api/v1/b/unknown") is None  # not in the document: the proxy goes on as before
