"""web's pure pieces: the sealed session cookie, CSRF tokens, cookie flags by environment,
French money and dates, and the pages that need no API."""

from __future__ import annotations

import base64
import os

import pytest

from web.config import WebSettings
from web.pages.common import Web, euros, french_date
from web.sessions import CookieCipher, MemberSession


def key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_sealed_cookie_opens_only_with_its_key_and_under_its_own_name():
    cipher = CookieCipher.from_settings(WebSettings(session_keys=key()))
    sealed = cipher.seal("espace_session", {"a": "token"})
    assert "token" not in sealed
    assert cipher.open("espace_session", sealed) == {"a": "token"}
    assert cipher.open("espace_lien", sealed) is None  # moved to another cookie: refused
    assert CookieCipher.from_settings(WebSettings(session_keys=key())).open("espace_session", sealed) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert cipher.open("espace_session", tampered) is None
    assert cipher.open("espace_session", "not base64 !") is None


def test_keys_rotate_the_first_seals_all_open():
    old, new = key(), key()
    sealed = CookieCipher.from_settings(WebSettings(session_keys=old)).seal("c", {"x": 1})
    assert CookieCipher.from_settings(WebSettings(session_keys=f"{new},{old}")).open("c", sealed) == {"x": 1}


def test_csrf_tokens_are_bound_to_their_cookie():
    cipher = CookieCipher([os.urandom(32)])
    token = cipher.csrf_token("secret-a")
    assert cipher.csrf_valid("secret-a", token)
    assert not cipher.csrf_valid("secret-b", token)
    assert not cipher.csrf_valid(None, token) and not cipher.csrf_valid("secret-a", None)


def test_cookies_are_secure_with_the_host_prefix_outside_dev():
    prod = Web(WebSettings(environment="prod"), api=None)  # type: ignore[arg-type]
    assert prod.secure and prod.session_cookie == "__Host-espace_session"
    dev = Web(WebSettings(), api=None)  # type: ignore[arg-type]
    assert not dev.secure and dev.session_cookie == "espace_session"


def test_a_session_refreshes_before_its_access_token_expires():
    session = MemberSession.from_api({"access_token": "a", "refresh_token": "r", "expires_in": 900,
                                      "refresh_expires_in": 3600, "terms_acceptance_required": False})
    assert not session.needs_refresh(30)
    assert session.needs_refresh(901)
    again = MemberSession.from_payload(session.to_payload())
    assert again is not None and (again.access_token, again.refresh_token) == ("a", "r")
    assert abs(again.access_exp - session.access_exp) < 1
    assert MemberSession.from_payload({"a": 1}) is None


@pytest.mark.parametrize("cents, text", [(0, "0,00\u00a0€"), (1234, "12,34\u00a0€"), (-5, "-0,05\u00a0€"),
                                          (123456789, "1\u202f234\u202f567,89\u00a0€"), (None, "—")])
def test_euros(cents, text):
    assert euros(cents) == text


def test_french_dates():
    assert french_date("2026-03-01") == "01/03/2026"
    assert french_date(None) == "—"


def test_pages_without_the_api_render_in_french_with_the_page_csp():
    from fastapi.testclient import TestClient

    from web.app import create_app

    with TestClient(create_app(WebSettings(gateway_url="http://127.0.0.1:9"))) as client:
        home = client.get("/")
        assert home.status_code == 200 and 'lang="fr"' in home.text
        assert "Créer mon espace (première connexion)" in home.text
        assert "script-src 'self'" in home.headers["content-security-policy"]
        assert "<script>" not in home.text  # no inline script anywhere
        assert client.get("/espace", follow_redirects=False).headers["location"] == "/connexion"
        moved = client.get("/activation?token=abc", follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == "/activation"
        assert client.post("/connexion", data={"identifier": "1", "password": "x"}).status_code == 403  # no CSRF


def test_the_beneficiaries_are_asked_once_a_minute_per_access_token_not_on_every_page():
    """Against a stand-in gateway (an HTTP server counting what web asks): the reimbursements
    page twice with one session asks the list twice and the beneficiaries once; another access
    token is never given the first one's answer."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from fastapi.testclient import TestClient

    from web.app import create_app

    asked: list[tuple[str, str]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            token = self.headers.get("Authorization", "")
            asked.append((self.path.split("?")[0], token))
            if self.path.startswith("/api/v1/claims/beneficiaries"):
                body = {"items": [{"member_id": "m", "membership_number": "1", "first_name": f"Prénom-{token[-1]}",
                                   "last_name": "Nom", "birth_date": "2012-01-01"}]}
            else:
                body = {"items": [], "next_cursor": None, "totals": None}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = key()
    cipher = CookieCipher.from_settings(WebSettings(session_keys=secret))

    def log_in_as(client, token: str) -> None:
        session = MemberSession.from_api({"access_token": token, "refresh_token": "r", "expires_in": 900,
                                          "refresh_expires_in": 3600, "terms_acceptance_required": False})
        client.cookies.set("espace_session", cipher.seal("espace_session", session.to_payload()))

    try:
        settings = WebSettings(gateway_url=f"http://127.0.0.1:{server.server_port}", session_keys=secret)
        with TestClient(create_app(settings)) as client:
            log_in_as(client, "token-A")
            for _ in range(2):
                page = client.get("/remboursements")
                assert page.status_code == 200 and "Prénom-A" in page.text
            log_in_as(client, "token-B")
            other = client.get("/remboursements")
            assert other.status_code == 200 and "Prénom-B" in other.text and "Prénom-A" not in other.text
    finally:
        server.shutdown()
    paths = [(path, token) for path, token in asked]
    assert paths.count(("/api/v1/claims/reimbursements", "Bearer token-A")) == 2
    assert paths.count(("/api/v1/claims/beneficiaries", "Bearer token-A")) == 1
    assert paths.count(("/api/v1/claims/beneficiaries", "Bearer token-B")) == 1
