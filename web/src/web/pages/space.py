"""The space itself: the dashboard of the seed's services, the profile (contact details, e-mail,
password) and Profil › Communication."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.pages.common import Web
from web.pages.identity import PASSWORD_HINT, REQUIRED, field_errors, summary, text

# The seed's list of services, each with the page that serves it.
SERVICES = [
    ("Mes garanties", "/garanties", "Ce que couvre votre contrat, et ce qu'il reste de chaque plafond."),
    ("Mes remboursements", "/remboursements", "Le détail de vos remboursements santé."),
    ("Dépôt de factures", "/factures", "Envoyez une facture (ostéopathie, optique…) pour être remboursé."),
    ("Mes documents", "/documents", "Vos courriers (appel de cotisation…) et relevés de prestations."),
    ("Carte de tiers payant", "/carte-tiers-payant", "Votre carte de tiers payant dématérialisée."),
    ("Recherche d'un professionnel de santé conventionné", "/professionnels-de-sante",
     "Trouvez un médecin, un dentiste, un opticien… et son secteur."),
    ("Messages à votre centre de gestion", "/messages", "Écrivez à votre centre de gestion et suivez ses réponses."),
    ("Mon profil", "/profil", "Vos coordonnées, votre adresse e-mail, votre mot de passe, vos préférences."),
]


def router(web: Web) -> APIRouter:
    r = APIRouter()

    @r.get("/espace")
    async def dashboard(request: Request) -> Response:
        me = await web.call(request, "GET", "/api/v1/identity/me")
        return web.render(request, "dashboard.html", title="Mon espace", me=me.body if me.ok else None,
                          services=SERVICES)

    async def profile_page(request: Request, status: int = 200, **extra) -> Response:
        me, prof = await asyncio.gather(
            web.call(request, "GET", "/api/v1/identity/me"), web.call(request, "GET", "/api/v1/identity/me/profile")
        )
        profile = prof.body if prof.ok else {}
        address = (profile or {}).get("postal_address") or {}
        values = {
            "phone": (profile or {}).get("phone") or "",
            "postal_address.line1": address.get("line1") or "",
            "postal_address.line2": address.get("line2") or "",
            "postal_address.postal_code": address.get("postal_code") or "",
            "postal_address.city": address.get("city") or "",
        }
        values.update(extra.pop("values", {}))
        return web.render(request, "profile.html", status=status, title="Mon profil", me=me.body if me.ok else {},
                          values=values, hint=PASSWORD_HINT, **extra)

    @r.get("/profil")
    async def profile(request: Request) -> Response:
        notice = {"coordonnees": "Vos coordonnées sont enregistrées.",
                  "email": "Un e-mail de confirmation a été envoyé à votre nouvelle adresse. Votre adresse actuelle "
                           "reste celle de votre espace tant que vous n'avez pas cliqué sur le lien qu'il contient.",
                  "mot-de-passe": "Votre mot de passe a été modifié."}.get(request.query_params.get("etat", ""))
        return await profile_page(request, notice=notice)

    @r.post("/profil/coordonnees")
    async def update_contact(request: Request) -> Response:
        form = await web.form(request)
        names = ["postal_address.line1", "postal_address.line2", "postal_address.postal_code", "postal_address.city"]
        values = {n: text(form, n, 200) for n in names} | {"phone": text(form, "phone", 40)}
        body: dict = {"phone": values["phone"].strip() or None}
        if any(values[n].strip() for n in names):
            body["postal_address"] = {
                "line1": values["postal_address.line1"], "line2": values["postal_address.line2"] or None,
                "postal_code": values["postal_address.postal_code"], "city": values["postal_address.city"],
                "country": "FR",
            }
        else:
            body["postal_address"] = None
        answer = await web.call(request, "PATCH", "/api/v1/identity/me/profile", json_body=body)
        if answer.ok:
            return web.redirect(request, "/profil?etat=coordonnees")
        errors = answer.field_errors()
        return await profile_page(request, status=answer.status, values=values, errors=errors,
                                  summary=summary(errors), problem=None if errors else answer.detail)

    @r.post("/profil/email")
    async def change_email(request: Request) -> Response:
        form = await web.form(request)
        values = {"new_email": text(form, "new_email", 300), "new_email_confirmation": text(form, "new_email_confirmation", 300)}
        password = text(form, "email_password")
        answer = await web.call(request, "POST", "/api/v1/identity/me/email-changes",
                                json_body={**values, "password": password})
        if answer.status == 202:
            return web.redirect(request, "/profil?etat=email")
        errors = field_errors(answer.field_errors(), {**values, "password": password},
                              ["new_email", "new_email_confirmation", "password"])
        if "password" in errors:
            errors["email_password"] = errors.pop("password")
        return await profile_page(request, status=answer.status, values=values, errors=errors, summary=summary(errors),
                                  problem=None if errors else answer.detail)

    @r.post("/profil/mot-de-passe")
    async def change_password(request: Request) -> Response:
        form = await web.form(request)
        sent = {n: text(form, n) for n in ("current_password", "new_password", "new_password_confirmation")}
        answer = await web.call(request, "POST", "/api/v1/identity/me/password", json_body=sent)
        if answer.ok:
            return web.redirect(request, "/profil?etat=mot-de-passe")
        errors = field_errors(answer.field_errors(), sent, list(sent))
        return await profile_page(request, status=answer.status, errors=errors, summary=summary(errors),
                                  problem=None if errors else answer.detail)

    @r.get("/profil/communication")
    async def communication(request: Request) -> Response:
        answer = await web.call(request, "GET", "/api/v1/identity/me/preferences")
        saved = request.query_params.get("etat") == "enregistre"
        return web.render(request, "communication.html", title="Profil › Communication",
                          prefs=answer.body if answer.ok else {}, saved=saved,
                          problem=None if answer.ok else answer.detail)

    @r.post("/profil/communication")
    async def set_communication(request: Request) -> Response:
        form = await web.form(request)
        body = {"paperless": bool(form.get("paperless")), "reimbursement_alerts": bool(form.get("reimbursement_alerts"))}
        answer = await web.call(request, "PUT", "/api/v1/identity/me/preferences", json_body=body)
        if answer.ok:
            return web.redirect(request, "/profil/communication?etat=enregistre")
        return web.render(request, "communication.html", status=answer.status, title="Profil › Communication",
                          prefs=body, problem=answer.detail)

    return r


__all__ = ["router", "REQUIRED"]
