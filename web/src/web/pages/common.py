"""What every page needs: the templates, the session cookie (and its transparent refresh), the
CSRF check, redirects, and calls to the API on the member's behalf."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from web.api import Api, ApiAnswer
from web.config import WebSettings
from web.sessions import CookieCipher, MemberSession, new_csrf_secret

log = logging.getLogger("web")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


def euros(cents: Any) -> str:
    """1234 → "12,34 €" (French format, a narrow no-break space for thousands)."""
    if type(cents) is not int:
        if cents is None or cents == "":
            return "—"
        try:
            cents = int(cents)
        except (TypeError, ValueError):
            return "—"
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    whole_text = f"{whole:,}".replace(",", "\u202f") if whole >= 1000 else str(whole)
    return f"{sign}{whole_text},{rest:02d}\u00a0€"


def french_date(value: Any) -> str:
    if not value:
        return "—"
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
        # f-strings rather than strftime: a list page formats dozens of dates.
        if isinstance(value, datetime):
            return f"{value.day:02d}/{value.month:02d}/{value.year:04d} à {value.hour:02d}:{value.minute:02d}"
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    except (ValueError, AttributeError):
        return str(value)


def make_environment() -> Environment:
    # Templates ship with the package and change only with a new release (a restart): no stat of
    # every template file on each page.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters["euros"] = euros
    env.filters["date_fr"] = french_date
    return env


class LoginRequired(Exception):
    """Raised by member pages without a usable session: answered with a redirect to log-in."""


class CsrfFailed(Exception):
    pass


class Web:
    """Shared state of the pages (one per process)."""

    def __init__(self, settings: WebSettings, api: Api) -> None:
        self.settings = settings
        self.api = api
        self.cipher = CookieCipher.from_settings(settings)
        self.templates = make_environment()
        secure = settings.cookies_secure
        prefix = "__Host-" if secure else ""
        self.secure = secure
        self.session_cookie = prefix + "espace_session"
        self.csrf_cookie = prefix + "espace_csrf"
        self.link_cookie = prefix + "espace_lien"
        self.pending_cookie = prefix + "espace_inscription"
        # Refresh tokens are single use, and presenting a spent one ends the session (reuse
        # detection). Two requests of the same browser arriving together with the same cookie
        # must not both spend it: one refresh per token at a time, and its result kept a little
        # while for the other request. (Several web replicas need sticky sessions or a shared
        # store for this; one replica per browser is what the deployment gives.)
        self._refresh_locks: dict[bytes, asyncio.Lock] = {}
        self._refreshed: OrderedDict[bytes, tuple[float, MemberSession]] = OrderedDict()
        # The contract's beneficiaries (the filter and form choices) change a few times in a
        # contract's life; asked once a minute per access token, not on every page.
        self._beneficiaries: OrderedDict[bytes, tuple[float, list]] = OrderedDict()

    # -- rendering --------------------------------------------------------------------------
    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("errors", {})
        context.setdefault("values", {})
        html = self.templates.get_template(template).render(
            request=request,
            csrf=self.csrf_token(request),
            logged_in=getattr(request.state, "member", None) is not None or self._has_session(request),
            terms_version=self.settings.terms_version,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        self.finish(request, response)
        return response

    def redirect(self, request: Request, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(request, response)
        return response

    def _has_session(self, request: Request) -> bool:
        return self.session_of(request) is not None and not getattr(request.state, "logged_out", False)

    # -- cookies ----------------------------------------------------------------------------
    def _set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="lax")

    def _delete(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")

    def finish(self, request: Request, response: Response) -> None:
        """Writes what the request changed: a new CSRF secret, a refreshed or ended session,
        the link and registration cookies."""
        state = request.state
        secret = getattr(state, "new_csrf_secret", None)
        if secret:
            self._set(response, self.csrf_cookie, secret, None)
        for name, (value, max_age) in getattr(state, "cookie_set", {}).items():
            self._set(response, name, value, max_age)
        for name in getattr(state, "cookie_delete", set()):
            self._delete(response, name)

    def set_cookie(self, request: Request, name: str, value: str, max_age: int | None) -> None:
        if not hasattr(request.state, "cookie_set"):
            request.state.cookie_set = {}
        request.state.cookie_set[name] = (value, max_age)
        getattr(request.state, "cookie_delete", set()).discard(name)

    def delete_cookie(self, request: Request, name: str) -> None:
        if not hasattr(request.state, "cookie_delete"):
            request.state.cookie_delete = set()
        request.state.cookie_delete.add(name)
        getattr(request.state, "cookie_set", {}).pop(name, None)

    def sealed(self, request: Request, name: str) -> dict | None:
        return self.cipher.open(name, request.cookies.get(name))

    def seal_into(self, request: Request, name: str, payload: dict, max_age: int | None) -> None:
        self.set_cookie(request, name, self.cipher.seal(name, payload), max_age)

    # -- CSRF -------------------------------------------------------------------------------
    def _csrf_secret(self, request: Request) -> str:
        secret = getattr(request.state, "new_csrf_secret", None) or request.cookies.get(self.csrf_cookie)
        if not secret or len(secret) > 64:
            secret = new_csrf_secret()
            request.state.new_csrf_secret = secret
        return secret

    def csrf_token(self, request: Request) -> str:
        return self.cipher.csrf_token(self._csrf_secret(request))

    def rotate_csrf(self, request: Request) -> None:
        """A new CSRF secret at log-in and log-out (a token seen before cannot be replayed)."""
        request.state.new_csrf_secret = new_csrf_secret()

    async def form(self, request: Request) -> Any:
        """The posted form, once its CSRF token is checked (raises CsrfFailed)."""
        form = await request.form()
        secret = request.cookies.get(self.csrf_cookie)
        token = form.get("csrf")
        if not isinstance(token, str) or not self.cipher.csrf_valid(secret, token):
            raise CsrfFailed()
        # Same-origin check as a second line: a browser sends Origin on every POST.
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
            if origin.split("://", 1)[-1] != host:
                raise CsrfFailed()
        return form

    # -- the member's session ---------------------------------------------------------------
    def session_of(self, request: Request) -> MemberSession | None:
        cached = getattr(request.state, "member", None)
        if cached is not None:
            return cached
        return MemberSession.from_payload(self.sealed(request, self.session_cookie))

    def start_session(self, request: Request, session: MemberSession) -> None:
        request.state.member = session
        request.state.logged_out = False
        self.seal_into(request, self.session_cookie, session.to_payload(), self.settings.session_cookie_max_age_s)

    def end_session(self, request: Request) -> None:
        request.state.member = None
        request.state.logged_out = True
        self.delete_cookie(request, self.session_cookie)

    async def member(self, request: Request) -> MemberSession:
        """The member's session with a live access token (refreshed when about to expire), or
        LoginRequired."""
        session = self.session_of(request)
        if session is None or getattr(request.state, "logged_out", False):
            raise LoginRequired()
        if session.needs_refresh(self.settings.refresh_margin_s):
            session = await self.refresh(request, session)
        request.state.member = session
        return session

    async def refresh(self, request: Request, session: MemberSession) -> MemberSession:
        key = hashlib.sha256(session.refresh_token.encode()).digest()
        lock = self._refresh_locks.setdefault(key, asyncio.Lock())
        async with lock:
            done = self._refreshed.get(key)
            if done is not None and time.monotonic() - done[0] < 60:
                fresh = done[1]
            else:
                answer = await self.api.call(
                    "POST", "/api/v1/identity/sessions/refresh", json_body={"refresh_token": session.refresh_token}
                )
                if not answer.ok:
                    self._refresh_locks.pop(key, None)
                    self.end_session(request)
                    raise LoginRequired()
                fresh = MemberSession.from_api(answer.body)
                self._refreshed[key] = (time.monotonic(), fresh)
                while len(self._refreshed) > 10_000 or (
                    self._refreshed and time.monotonic() - next(iter(self._refreshed.values()))[0] > 60
                ):
                    old, _ = self._refreshed.popitem(last=False)
                    self._refresh_locks.pop(old, None)
        self.start_session(request, fresh)
        return fresh

    async def call(self, request: Request, method: str, path: str, **kwargs: Any) -> ApiAnswer:
        """An API call with the member's token; a 401 (token revoked or expired early) gets one
        refresh and one retry, then LoginRequired."""
        session = await self.member(request)
        answer = await self.api.call(method, path, token=session.access_token, **kwargs)
        if answer.status == 401:
            session = await self.refresh(request, session)
            answer = await self.api.call(method, path, token=session.access_token, **kwargs)
            if answer.status == 401:
                self.end_session(request)
                raise LoginRequired()
        return answer


    async def beneficiaries(self, request: Request) -> list:
        """The contract's beneficiaries this member may see, as claims answers them, remembered
        for `beneficiaries_memory_s` per access token (so only its bearer is ever given them)."""
        session = await self.member(request)
        key = hashlib.sha256(session.access_token.encode()).digest()
        now = time.monotonic()
        known = self._beneficiaries.get(key)
        if known is not None and now - known[0] < self.settings.beneficiaries_memory_s:
            return known[1]
        answer = await self.call(request, "GET", "/api/v1/claims/beneficiaries")
        if not answer.ok or not isinstance(answer.body, dict) or not isinstance(answer.body.get("items"), list):
            return []
        people = answer.body["items"]
        session = request.state.member  # a retry after a 401 may have refreshed the token
        key = hashlib.sha256(session.access_token.encode()).digest()
        self._beneficiaries[key] = (now, people)
        self._beneficiaries.move_to_end(key)  # oldest first, for the trim below
        while len(self._beneficiaries) > 10_000 or (
            self._beneficiaries and now - next(iter(self._beneficiaries.values()))[0] > self.settings.beneficiaries_memory_s
        ):
            self._beneficiaries.popitem(last=False)
        return people


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
