"""Pages before the space: home, registration ("Créer mon espace"), the e-mailed links
(activation, password reset, e-mail change), log-in, forgotten password, terms, log-out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.pages.common import LoginRequired, Web, client_ip
from web.sessions import MemberSession

REQUIRED = "Ce champ est obligatoire."
DATE_FORMAT = "La date n'est pas valide (format attendu : JJ/MM/AAAA)."
PASSWORD_HINT = ("8 caractères minimum (doit contenir au moins 1 minuscule, 1 majuscule, 1 chiffre et 1 "
                 "caractère spécial)")

REGISTRATION_FIELDS = [
    ("membership_number", "Numéro d'adhérent"),
    ("last_name", "Nom"),
    ("first_name", "Prénom"),
    ("birth_date", "Date de naissance"),
    ("email", "Adresse e-mail"),
    ("email_confirmation", "Confirmation de l'adresse e-mail"),
    ("password", "Mot de passe"),
    ("password_confirmation", "Confirmation du mot de passe"),
    ("terms_accepted", "Conditions générales d'utilisation"),
]
LABELS = dict(REGISTRATION_FIELDS) | {
    "identifier": "Numéro d'adhérent ou de contrat",
    "new_email": "Nouvelle adresse e-mail",
    "new_email_confirmation": "Confirmation de la nouvelle adresse e-mail",
    "current_password": "Mot de passe actuel",
    "new_password": "Nouveau mot de passe",
    "new_password_confirmation": "Confirmation du nouveau mot de passe",
    "phone": "Téléphone",
    "postal_address.line1": "Numéro et voie",
    "postal_address.line2": "Complément d'adresse",
    "postal_address.postal_code": "Code postal",
    "postal_address.city": "Ville",
    "postal_address.country": "Pays",
}

# Messages shown on the page for the `?etat=` of a redirect (never anything personal in URLs).
NOTICES = {
    "deconnecte": "Vous êtes déconnecté.",
    "deconnecte-partout": "Vous êtes déconnecté sur tous vos appareils.",
    "session-expiree": "Votre session a expiré. Connectez-vous de nouveau.",
    "active": "Votre espace est activé. Connectez-vous avec votre numéro d'adhérent et votre mot de passe.",
    "deja-active": "Ce lien a déjà servi : votre espace est activé, connectez-vous.",
    "mot-de-passe-modifie": "Votre mot de passe a été modifié. Connectez-vous avec votre nouveau mot de passe.",
}


def field_errors(answer_errors: dict[str, str], form: dict[str, str], required: list[str]) -> dict[str, str]:
    """The API's field errors, with "obligatoire" for what was left empty, in form order."""
    errors = dict(answer_errors)
    for name in required:
        if not form.get(name, "").strip():
            errors[name] = REQUIRED
    if "birth_date" in errors and errors["birth_date"] != REQUIRED and "format" in errors["birth_date"]:
        errors["birth_date"] = DATE_FORMAT
    return errors


def summary(errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """(field id, label, message) for the error summary at the top of the form."""
    return [(name.replace(".", "-"), LABELS.get(name, name), message) for name, message in errors.items()]


def text(form: Any, name: str, limit: int = 1024) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def router(web: Web) -> APIRouter:
    r = APIRouter()
    api = web.api

    @r.get("/")
    async def home(request: Request) -> Response:
        return web.render(request, "home.html", title="Bienvenue dans votre espace adhérent")

    # -- registration -----------------------------------------------------------------------
    @r.get("/inscription")
    async def registration_form(request: Request) -> Response:
        return web.render(request, "register.html", title="Créer mon espace", hint=PASSWORD_HINT,
                          values={"paperless": "on"})

    @r.post("/inscription")
    async def register(request: Request) -> Response:
        form = await web.form(request)
        values = {name: text(form, name, 300) for name, _ in REGISTRATION_FIELDS if not name.startswith("password")}
        values["paperless"] = "on" if form.get("paperless") else ""
        values["terms_accepted"] = "on" if form.get("terms_accepted") else ""
        password = text(form, "password")
        confirmation = text(form, "password_confirmation")
        body = {
            "membership_number": values["membership_number"],
            "last_name": values["last_name"],
            "first_name": values["first_name"],
            "birth_date": values["birth_date"],
            "email": values["email"],
            "email_confirmation": values["email_confirmation"],
            "password": password,
            "password_confirmation": confirmation,
            "terms_accepted": bool(values["terms_accepted"]),
            "paperless": bool(values["paperless"]),
        }
        answer = await api.call("POST", "/api/v1/identity/registrations", json_body=body, client_ip=client_ip(request))
        if answer.status == 202:
            # Kept (encrypted, HttpOnly, 48 h) for a one-click resend from an expired link.
            web.seal_into(request, web.pending_cookie,
                          {"m": values["membership_number"], "e": values["email"]}, 48 * 3600)
            return web.redirect(request, "/inscription/email-envoye")
        errors: dict[str, str] = {}
        if answer.status == 422:
            required = [n for n, _ in REGISTRATION_FIELDS if n != "terms_accepted"]
            errors = field_errors(answer.field_errors(), {**values, "password": password,
                                                          "password_confirmation": confirmation}, required)
            if not values["terms_accepted"]:
                errors["terms_accepted"] = "Vous devez accepter les conditions générales d'utilisation."
            ordered = [n for n, _ in REGISTRATION_FIELDS]
            errors = dict(sorted(errors.items(), key=lambda kv: ordered.index(kv[0]) if kv[0] in ordered else 99))
        return web.render(
            request, "register.html", status=422 if errors else answer.status if answer.status >= 400 else 400,
            title="Créer mon espace", hint=PASSWORD_HINT, values=values, errors=errors, summary=summary(errors),
            problem=None if errors else answer.detail or "La demande n'a pas abouti. Réessayez.",
        )

    @r.get("/inscription/email-envoye")
    async def email_sent(request: Request) -> Response:
        return web.render(request, "email_sent.html", title="Un e-mail vient de vous être envoyé")

    # -- e-mailed links: the token goes into a short-lived cookie, then out of the URL ----------
    def take_link_token(request: Request, kind: str, path: str) -> Response | None:
        token = request.query_params.get("token")
        if token is None:
            return None
        web.seal_into(request, web.link_cookie, {"k": kind, "t": token[:256]}, 15 * 60)
        return web.redirect(request, path)

    def link_token(request: Request, kind: str) -> str | None:
        data = web.sealed(request, web.link_cookie)
        if not data or data.get("k") != kind:
            return None
        return str(data.get("t") or "") or None

    @r.get("/activation")
    async def activation(request: Request) -> Response:
        moved = take_link_token(request, "activation", "/activation")
        if moved is not None:
            return moved
        token = link_token(request, "activation")
        if token is None:
            return web.render(request, "activation.html", status=400, title="Activation de votre espace",
                              outcome="missing", can_resend=web.sealed(request, web.pending_cookie) is not None)
        answer = await api.call("POST", "/api/v1/identity/activations", json_body={"token": token})
        web.delete_cookie(request, web.link_cookie)
        if answer.ok:
            web.delete_cookie(request, web.pending_cookie)
            return web.redirect(request, "/connexion?etat=active")
        if answer.code == "activation_token_used":
            return web.redirect(request, "/connexion?etat=deja-active")
        outcome = {"activation_token_expired": "expired", "activation_token_revoked": "revoked"}.get(answer.code, "invalid")
        return web.render(request, "activation.html", status=answer.status if answer.status >= 400 else 400,
                          title="Activation de votre espace", outcome=outcome, detail=answer.detail,
                          can_resend=web.sealed(request, web.pending_cookie) is not None)

    @r.get("/activation/nouveau-lien")
    async def resend_form(request: Request) -> Response:
        return web.render(request, "resend.html", title="Recevoir un nouveau lien d'activation")

    @r.post("/activation/nouveau-lien")
    async def resend(request: Request) -> Response:
        form = await web.form(request)
        pending = web.sealed(request, web.pending_cookie)
        if form.get("one_click") and pending:
            membership_number, email = str(pending.get("m", "")), str(pending.get("e", ""))
        else:
            membership_number, email = text(form, "membership_number", 64), text(form, "email", 300)
        answer = await api.call("POST", "/api/v1/identity/activations/resend",
                                json_body={"membership_number": membership_number, "email": email})
        if answer.status == 202:
            return web.redirect(request, "/inscription/email-envoye?renvoi=1")
        errors = field_errors(answer.field_errors(), {"membership_number": membership_number, "email": email},
                              ["membership_number", "email"]) if answer.status == 422 else {}
        return web.render(request, "resend.html", status=answer.status if answer.status >= 400 else 400,
                          title="Recevoir un nouveau lien d'activation",
                          values={"membership_number": membership_number, "email": email}, errors=errors,
                          summary=summary(errors), problem=None if errors else answer.detail)

    # -- log-in -----------------------------------------------------------------------------
    @r.get("/connexion")
    async def login_form(request: Request) -> Response:
        notice = NOTICES.get(request.query_params.get("etat", ""))
        return web.render(request, "login.html", title="Connexion à votre espace", notice=notice)

    @r.post("/connexion")
    async def login(request: Request) -> Response:
        form = await web.form(request)
        identifier = text(form, "identifier", 64).strip()
        password = text(form, "password")
        errors: dict[str, str] = {}
        if not identifier:
            errors["identifier"] = REQUIRED
        if not password:
            errors["password"] = REQUIRED
        problem = None
        not_activated = False
        if not errors:
            answer = await api.call("POST", "/api/v1/identity/sessions",
                                    json_body={"identifier": identifier, "password": password})
            if answer.ok:
                web.rotate_csrf(request)
                session = MemberSession.from_api(answer.body)
                web.start_session(request, session)
                return web.redirect(request, "/cgu/acceptation" if session.terms_required else "/espace")
            if answer.status == 422:
                errors = field_errors(answer.field_errors(), {"identifier": identifier, "password": password}, [])
            if not errors:
                problem = answer.detail or "La connexion n'a pas abouti."
                not_activated = answer.code == "account_not_activated"
        return web.render(request, "login.html", status=422 if errors else 401, title="Connexion à votre espace",
                          values={"identifier": identifier}, errors=errors, summary=summary(errors),
                          problem=problem, not_activated=not_activated)

    # -- forgotten password -----------------------------------------------------------------
    @r.get("/mot-de-passe/oubli")
    async def forgotten_form(request: Request) -> Response:
        return web.render(request, "forgotten.html", title="Mot de passe oublié")

    @r.post("/mot-de-passe/oubli")
    async def forgotten(request: Request) -> Response:
        form = await web.form(request)
        identifier = text(form, "identifier", 64).strip()
        if not identifier:
            errors = {"identifier": REQUIRED}
            return web.render(request, "forgotten.html", status=422, title="Mot de passe oublié",
                              errors=errors, summary=summary(errors))
        answer = await api.call("POST", "/api/v1/identity/password-resets", json_body={"identifier": identifier})
        if answer.status == 202:
            return web.render(request, "forgotten.html", title="Mot de passe oublié", sent=answer.detail)
        errors = field_errors(answer.field_errors(), {"identifier": identifier}, ["identifier"])
        return web.render(request, "forgotten.html", status=answer.status, title="Mot de passe oublié",
                          values={"identifier": identifier}, errors=errors, summary=summary(errors),
                          problem=None if errors else answer.detail)

    @r.get("/mot-de-passe/reinitialisation")
    async def reset_form(request: Request) -> Response:
        moved = take_link_token(request, "reset", "/mot-de-passe/reinitialisation")
        if moved is not None:
            return moved
        if link_token(request, "reset") is None:
            return web.render(request, "reset.html", status=400, title="Choisir un nouveau mot de passe",
                              link_problem="Ce lien n'est pas valide ou a expiré. Demandez un nouveau lien.")
        return web.render(request, "reset.html", title="Choisir un nouveau mot de passe", hint=PASSWORD_HINT)

    @r.post("/mot-de-passe/reinitialisation")
    async def reset(request: Request) -> Response:
        form = await web.form(request)
        token = link_token(request, "reset")
        if token is None:
            return web.render(request, "reset.html", status=400, title="Choisir un nouveau mot de passe",
                              link_problem="Ce lien n'est pas valide ou a expiré. Demandez un nouveau lien.")
        password, confirmation = text(form, "password"), text(form, "password_confirmation")
        answer = await api.call("POST", "/api/v1/identity/password-resets/confirm",
                                json_body={"token": token, "password": password, "password_confirmation": confirmation})
        if answer.ok:
            web.delete_cookie(request, web.link_cookie)
            web.end_session(request)
            return web.redirect(request, "/connexion?etat=mot-de-passe-modifie")
        if answer.status == 422:
            errors = field_errors(answer.field_errors(), {"password": password, "password_confirmation": confirmation},
                                  ["password", "password_confirmation"])
            return web.render(request, "reset.html", status=422, title="Choisir un nouveau mot de passe",
                              hint=PASSWORD_HINT, errors=errors, summary=summary(errors))
        web.delete_cookie(request, web.link_cookie)
        return web.render(request, "reset.html", status=answer.status, title="Choisir un nouveau mot de passe",
                          link_problem=answer.detail or "Ce lien n'est plus valable. Demandez un nouveau lien.")

    # -- e-mail change confirmation -----------------------------------------------------------
    @r.get("/email/confirmation")
    async def email_confirmation(request: Request) -> Response:
        moved = take_link_token(request, "email", "/email/confirmation")
        if moved is not None:
            return moved
        token = link_token(request, "email")
        if token is None:
            return web.render(request, "email_confirmed.html", status=400, title="Confirmation de votre adresse e-mail",
                              problem="Ce lien n'est pas valide.")
        answer = await api.call("POST", "/api/v1/identity/email-changes/confirm", json_body={"token": token})
        web.delete_cookie(request, web.link_cookie)
        if answer.ok:
            return web.render(request, "email_confirmed.html", title="Confirmation de votre adresse e-mail",
                              email=answer.body.get("email"))
        return web.render(request, "email_confirmed.html", status=answer.status,
                          title="Confirmation de votre adresse e-mail", problem=answer.detail)

    # -- terms ------------------------------------------------------------------------------
    @r.get("/cgu")
    async def terms(request: Request) -> Response:
        return web.render(request, "terms.html", title="Conditions générales d'utilisation")

    @r.get("/mentions-legales")
    async def legal(request: Request) -> Response:
        return web.render(request, "legal.html", title="Mentions légales")

    @r.get("/cgu/acceptation")
    async def terms_acceptance_form(request: Request) -> Response:
        session = await web.member(request)
        return web.render(request, "terms_accept.html", title="Nouvelles conditions générales d'utilisation",
                          version=session.terms_version or web.settings.terms_version)

    @r.post("/cgu/acceptation")
    async def terms_acceptance(request: Request) -> Response:
        form = await web.form(request)
        session = await web.member(request)
        version = session.terms_version or web.settings.terms_version
        if not form.get("accept"):
            errors = {"accept": "Vous devez accepter les conditions générales d'utilisation pour continuer."}
            return web.render(request, "terms_accept.html", status=422, version=version,
                              title="Nouvelles conditions générales d'utilisation", errors=errors,
                              summary=[("accept", "Conditions générales d'utilisation", errors["accept"])])
        answer = await web.call(request, "POST", "/api/v1/identity/me/terms-acceptances", json_body={"version": version})
        if answer.ok:
            session.terms_required = False
            web.start_session(request, session)
            return web.redirect(request, "/espace")
        return web.render(request, "terms_accept.html", status=answer.status, version=version,
                          title="Nouvelles conditions générales d'utilisation", problem=answer.detail)

    # -- log-out ----------------------------------------------------------------------------
    @r.post("/deconnexion")
    async def log_out(request: Request) -> Response:
        await web.form(request)
        everywhere = request.query_params.get("partout") == "1"
        try:
            await web.call(request, "DELETE", "/api/v1/identity/sessions" if everywhere else "/api/v1/identity/sessions/current")
        except LoginRequired:
            pass
        web.end_session(request)
        web.rotate_csrf(request)
        return web.redirect(request, "/connexion?etat=" + ("deconnecte-partout" if everywhere else "deconnecte"))

    return r

