"""One page per member-facing capability of claims, the directory and documents, coded against
the API contracts of their issues (guarantees, beneficiaries, reimbursements and reports;
providers and specialties; invoices, documents and download links, card, messages)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from starlette.datastructures import UploadFile

from web.pages.common import Web, euros, french_date
from web.pages.identity import REQUIRED, text

ID = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
CARE_TYPES = [
    ("osteopathy", "Ostéopathie"), ("optics", "Optique"), ("dental", "Dentaire"), ("hearing", "Audition"),
    ("hospital", "Hospitalisation"), ("other", "Autre"),
]
FILTERS = ("from", "to", "beneficiary", "category", "cursor")
DIRECTORY_FILTERS = ("q", "specialty", "postcode", "city", "sector", "optam", "cursor")


def items(body: Any) -> list:
    """The list of a paged answer, whatever the envelope calls it."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("items", "lines", "results", "data", "documents", "threads", "beneficiaries", "specialties",
                    "subjects"):
            if isinstance(body.get(key), list):
                return body[key]
    return []


def next_cursor(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    value = body.get("next_cursor")
    if not value and isinstance(body.get("page"), dict):
        value = body["page"].get("next_cursor")
    return str(value) if value else None


def _first(line: dict, *names: str) -> Any:
    for name in names:
        if value := line.get(name):
            return value
    return None


# One row of the reimbursements table. The rows are written here rather than cell by cell in the
# template: a 20-line page spent more on the template's per-cell lookups, fallbacks and escapes
# than on the rest of the page. What comes from the API is escaped (`escape`); the amounts are
# made of digits, spaces and "€" by `euros`.
_ROW = ("<tr>\n  <td>{}</td>\n  <td>{}</td>\n  <th scope=\"row\"><a href=\"/remboursements/{}\">{}</a></th>\n"
        "  <td>{}</td>\n  <td>{}</td>\n  <td>{}</td>\n  <td>{}</td>\n  <td>{}</td>\n</tr>\n")


def line_rows(lines: list) -> list[Markup]:
    """The table's rows, field names of the claims API first, then the older names the page
    accepted."""
    rows = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        who = line.get("beneficiary")
        if isinstance(who, dict):
            name = line.get("beneficiary_name") or who.get("first_name")
        else:
            name = line.get("beneficiary_name") or who
        rows.append(Markup(_ROW.format(
            escape(french_date(line.get("care_date"))), escape(name), escape(line.get("id")),
            escape(_first(line, "act_label", "act_code")),
            euros(_first(line, "amount_charged_cents", "amount_charged")),
            euros(_first(line, "secu_paid_cents", "secu_paid")),
            euros(_first(line, "mutuelle_paid_cents", "mutuelle_paid")),
            euros(_first(line, "out_of_pocket_cents", "out_of_pocket")),
            escape(_first(line, "status_label", "status")),
        )))
    return rows


def router(web: Web) -> APIRouter:
    r = APIRouter()

    def unavailable(request: Request, title: str, answer) -> Response:
        return web.render(request, "unavailable.html", status=answer.status if answer.status >= 400 else 502,
                          title=title, detail=answer.detail)

    # -- claims -----------------------------------------------------------------------------
    @r.get("/garanties")
    async def guarantees(request: Request) -> Response:
        answer = await web.call(request, "GET", "/api/v1/claims/guarantees")
        if not answer.ok:
            return unavailable(request, "Mes garanties", answer)
        return web.render(request, "guarantees.html", title="Mes garanties", data=answer.body)

    @r.get("/remboursements")
    async def reimbursements(request: Request) -> Response:
        params = {k: request.query_params.get(k, "")[:64] for k in FILTERS}
        lines, people = await asyncio.gather(
            web.call(request, "GET", "/api/v1/claims/reimbursements", params=params), web.beneficiaries(request),
        )
        if not lines.ok and lines.status != 422:
            return unavailable(request, "Mes remboursements", lines)
        errors = lines.field_errors() if lines.status == 422 else {}
        return web.render(request, "reimbursements.html", status=422 if errors else 200, title="Mes remboursements",
                          rows=line_rows(items(lines.body)) if lines.ok else [], totals=(lines.body or {}).get("totals")
                          if lines.ok and isinstance(lines.body, dict) else None,
                          next_cursor=next_cursor(lines.body) if lines.ok else None, filters=params,
                          beneficiaries=people, errors=errors,
                          summary=[(k, k, v) for k, v in errors.items()])

    @r.get("/remboursements/{line_id}")
    async def reimbursement(request: Request, line_id: str) -> Response:
        if not ID.match(line_id):
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        answer = await web.call(request, "GET", f"/api/v1/claims/reimbursements/{line_id}")
        if answer.status == 404:
            return web.render(request, "not_found.html", status=404, title="Remboursement introuvable")
        if not answer.ok:
            return unavailable(request, "Détail du remboursement", answer)
        reported = request.query_params.get("etat") == "signale"
        return web.render(request, "reimbursement.html", title="Détail du remboursement", line=answer.body,
                          line_id=line_id, reported=reported)

    @r.post("/remboursements/{line_id}/signalement")
    async def report(request: Request, line_id: str) -> Response:
        form = await web.form(request)
        if not ID.match(line_id):
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        comment = text(form, "comment", 2000).strip()
        answer = await web.call(request, "POST", f"/api/v1/claims/reimbursements/{line_id}/reports",
                                json_body={"comment": comment} if comment else {})
        if answer.ok:
            return web.redirect(request, f"/remboursements/{line_id}?etat=signale")
        return unavailable(request, "Je ne reconnais pas ce remboursement", answer)

    # -- the directory (public) -------------------------------------------------------------
    @r.get("/professionnels-de-sante")
    async def directory(request: Request) -> Response:
        params = {k: request.query_params.get(k, "")[:100] for k in DIRECTORY_FILTERS}
        searched = any(params[k] for k in DIRECTORY_FILTERS if k != "cursor")
        specialties = await web.api.call("GET", "/api/v1/claims/specialties")
        results, errors, problem, cursor = [], {}, None, None
        if searched:
            answer = await web.api.call("GET", "/api/v1/claims/providers", params=params)
            if answer.ok:
                results, cursor = items(answer.body), next_cursor(answer.body)
            elif answer.status == 422:
                errors = answer.field_errors()
            else:
                problem = answer.detail
        return web.render(request, "directory.html", status=422 if errors else 200,
                          title="Recherche d'un professionnel de santé conventionné", filters=params,
                          specialties=items(specialties.body) if specialties.ok else [], results=results,
                          searched=searched, next_cursor=cursor, errors=errors, problem=problem,
                          summary=[(k, k, v) for k, v in errors.items()])

    # -- documents --------------------------------------------------------------------------
    @r.get("/documents")
    async def documents(request: Request) -> Response:
        params = {k: request.query_params.get(k, "")[:64] for k in ("type", "from", "to", "cursor")}
        answer = await web.call(request, "GET", "/api/v1/documents", params=params)
        if not answer.ok:
            return unavailable(request, "Mes documents", answer)
        return web.render(request, "documents.html", title="Mes documents", documents=items(answer.body),
                          next_cursor=next_cursor(answer.body), filters=params,
                          problem=request.query_params.get("etat") == "lien-refuse")

    @r.post("/documents/{document_id}/telechargement")
    async def download(request: Request, document_id: str) -> Response:
        await web.form(request)
        if not ID.match(document_id):
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        answer = await web.call(request, "POST", f"/api/v1/documents/{document_id}/download-links")
        url = (answer.body or {}).get("url") if answer.ok and isinstance(answer.body, dict) else None
        # Only a link on this site (the gateway's signed download route), never elsewhere.
        if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
            return web.redirect(request, url)
        if isinstance(url, str) and "/api/v1/documents/" in url:
            return web.redirect(request, url[url.index("/api/v1/documents/"):])
        return web.redirect(request, "/documents?etat=lien-refuse")

    @r.get("/factures")
    async def invoice_form(request: Request) -> Response:
        people, submissions = await asyncio.gather(
            web.beneficiaries(request), web.call(request, "GET", "/api/v1/documents/invoices"))
        return web.render(request, "invoices.html", title="Dépôt de factures", care_types=CARE_TYPES,
                          beneficiaries=people,
                          submissions=items(submissions.body) if submissions.ok else [],
                          sent=request.query_params.get("etat") == "envoye")

    @r.post("/factures")
    async def upload(request: Request) -> Response:
        form = await web.form(request)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        values = {k: text(form, k, 2000) for k in ("beneficiary", "care_type", "care_date", "amount_charged", "comment")}
        errors: dict[str, str] = {}
        for name in ("beneficiary", "care_type", "care_date"):
            if not values[name].strip():
                errors[name] = REQUIRED
        if not files:
            errors["files"] = "Joignez au moins un fichier (PDF, JPEG ou PNG)."
        if not errors:
            import aiohttp

            data = aiohttp.FormData()
            for name, value in values.items():
                if value.strip():
                    data.add_field(name, value.strip())
            for f in files:
                data.add_field("files", f.file, filename=f.filename, content_type=f.content_type or "application/octet-stream")
            answer = await web.call(request, "POST", "/api/v1/documents/invoices", data=data, upload=True)
            if answer.ok:
                return web.redirect(request, "/factures?etat=envoye")
            errors = answer.field_errors()
            if not errors:
                errors["files"] = answer.detail or "L'envoi n'a pas abouti."
        people = await web.beneficiaries(request)
        return web.render(request, "invoices.html", status=422, title="Dépôt de factures", care_types=CARE_TYPES,
                          beneficiaries=people, submissions=[], values=values,
                          errors=errors, summary=[(k, k, v) for k, v in errors.items()])

    @r.get("/carte-tiers-payant")
    async def card(request: Request) -> Response:
        answer = await web.call(request, "GET", "/api/v1/documents/card")
        if not answer.ok:
            return unavailable(request, "Carte de tiers payant", answer)
        return web.render(request, "card.html", title="Carte de tiers payant", card=answer.body)

    # -- messages ---------------------------------------------------------------------------
    @r.get("/messages")
    async def messages(request: Request) -> Response:
        threads, subjects = await asyncio.gather(
            web.call(request, "GET", "/api/v1/documents/messages"),
            web.call(request, "GET", "/api/v1/documents/messages/subjects"),
        )
        if not threads.ok:
            return unavailable(request, "Messages", threads)
        return web.render(request, "messages.html", title="Messages à votre centre de gestion",
                          threads=items(threads.body), subjects=items(subjects.body) if subjects.ok else [],
                          sent=request.query_params.get("etat") == "envoye")

    @r.post("/messages")
    async def new_message(request: Request) -> Response:
        form = await web.form(request)
        values = {"subject": text(form, "subject", 64), "body": text(form, "body", 10_000)}
        errors = {k: REQUIRED for k, v in values.items() if not v.strip()}
        if not errors:
            answer = await web.call(request, "POST", "/api/v1/documents/messages", json_body=values)
            if answer.ok:
                return web.redirect(request, "/messages?etat=envoye")
            errors = answer.field_errors() or {"body": answer.detail or "L'envoi n'a pas abouti."}
        subjects = await web.call(request, "GET", "/api/v1/documents/messages/subjects")
        return web.render(request, "messages.html", status=422, title="Messages à votre centre de gestion", threads=[],
                          subjects=items(subjects.body) if subjects.ok else [], values=values, errors=errors,
                          summary=[(k, k, v) for k, v in errors.items()])

    @r.get("/messages/{thread_id}")
    async def thread(request: Request, thread_id: str) -> Response:
        if not ID.match(thread_id):
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        answer = await web.call(request, "GET", f"/api/v1/documents/messages/{thread_id}")
        if answer.status == 404:
            return web.render(request, "not_found.html", status=404, title="Message introuvable")
        if not answer.ok:
            return unavailable(request, "Message", answer)
        return web.render(request, "thread.html", title="Message", thread=answer.body, thread_id=thread_id)

    @r.post("/messages/{thread_id}/reponses")
    async def reply(request: Request, thread_id: str) -> Response:
        form = await web.form(request)
        if not ID.match(thread_id):
            return web.render(request, "not_found.html", status=404, title="Page introuvable")
        body = text(form, "body", 10_000)
        if body.strip():
            answer = await web.call(request, "POST", f"/api/v1/documents/messages/{thread_id}/replies",
                                    json_body={"body": body})
            if not answer.ok:
                return unavailable(request, "Message", answer)
        return web.redirect(request, f"/messages/{thread_id}")

    return r
