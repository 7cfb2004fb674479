"""Everything outside /api/ goes to the web front end: path and query as sent, bodies streamed,
the browser's host passed on, web's own headers (its CSP, its cookies, its redirects) kept, and
the gateway's own routes and API untouched."""

from __future__ import annotations

import aiohttp

from gateway.headers import API_CSP


async def test_pages_go_to_web_with_their_query_and_the_browsers_host(start_gateway, client, bearer, services):
    web = type(services.claims)("web")  # conftest's FakeService
    await web.start()
    try:
        async with start_gateway(web_url=web.url) as gateway:
            async with client.get(f"{gateway}/activation?token=abc") as response:
                assert response.status == 200
                assert (await response.json())["service"] == "web"
                # The API's `default-src 'none'` is not put on pages (web sets a CSP fit for them).
                assert response.headers.get("Content-Security-Policy") != API_CSP.decode()
            seen = web.last
            assert (seen.path, seen.query) == ("/activation", "token=abc")
            assert seen.headers["x-forwarded-host"] == gateway.removeprefix("http://")
            assert seen.headers["x-forwarded-for"] == "127.0.0.1"

            async with client.post(f"{gateway}/connexion", data=b"identifier=1&password=x",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
                assert response.status == 200
            assert web.last.method == "POST" and web.last.body == b"identifier=1&password=x"

            async with client.get(f"{gateway}/x/headers") as response:
                assert response.headers["Content-Security-Policy"] == "default-src *"  # web's own, kept
                assert response.headers["X-Service-Header"] == "kept"
            async with client.get(f"{gateway}/x/cookie") as response:
                assert "session=" in response.headers["Set-Cookie"]  # web's session cookie reaches the browser
            async with client.get(f"{gateway}/x/redirect", allow_redirects=False) as response:
                assert response.status == 302 and response.headers["Location"] == "/elsewhere"

            # The gateway's own routes and the API stay the gateway's.
            async with client.get(f"{gateway}/healthz") as response:
                assert (await response.json()) == {"status": "ok"}
            async with client.get(f"{gateway}/api/v1/unknown/x", headers=bearer()) as response:
                assert response.status == 404
                assert response.headers["Content-Security-Policy"] == API_CSP.decode()
    finally:
        await web.stop()


async def test_web_down_is_a_french_page_not_a_hang(start_gateway, client, closed_port):
    async with start_gateway(web_url=f"http://127.0.0.1:{closed_port}") as gateway:
        async with client.get(f"{gateway}/espace", timeout=aiohttp.ClientTimeout(total=10)) as response:
            assert response.status == 502
            assert response.headers["Content-Type"].startswith("text/html")
            assert "momentanément indisponible" in await response.text()


async def test_without_web_other_paths_are_404_problems(gateway, client):
    async with client.get(f"{gateway}/espace") as response:
        assert response.status == 404
        assert response.headers["Content-Type"].startswith("application/problem+json")
