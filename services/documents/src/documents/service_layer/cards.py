"""The contract's digital tiers-payant card: reissued when its beneficiaries or plan change
(MemberEnrolled), the previous version marked replaced; valid for the calendar year."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.tables import Card, Document, Member
from documents.domain import card as rules
from documents.service_layer import members
from documents.service_layer.context import Documents
from shared.platform.problems import ProblemError


def datamatrix_png(payload: str) -> bytes:
    from pystrich.datamatrix import DataMatrixEncoder

    return DataMatrixEncoder(payload).get_imagedata(cellsize=6)


async def current(session: AsyncSession, contract_number: str) -> Card | None:
    return (await session.exec(
        select(Card).where(Card.contract_number == contract_number, Card.replaced_at.is_(None))
    )).first()


async def reissue(docs: Documents, session: AsyncSession, contract_number: str) -> Card | None:
    people = [m for m in await members.of_contract(session, contract_number) if m.coverage_end is None
              or m.coverage_end >= datetime.now(UTC).date()]
    holder = members.holder_of(people)
    if holder is None:
        return None
    # Serialise reissues of one contract (two members of it enrolled at once).
    await session.exec(select(Member).where(Member.contract_number == contract_number).with_for_update())
    now = datetime.now(UTC)
    valid_from, valid_to = rules.validity(now.date())
    s = docs.settings
    domains = [{"code": c, "label": label, "level": level} for c, label, level in rules.DOMAINS]
    ordered = sorted(people, key=lambda m: (m.member_id != holder.member_id, m.birth_date or now.date()))
    content = {
        "amc_number": s.amc_number, "convention_type": s.convention_type, "routing_code": s.routing_code,
        "membership_number": holder.membership_number, "contract_number": contract_number,
        "valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat(), "responsable": True,
        "plan_code": holder.plan_code,
        "beneficiaries": [{"name": m.full_name, "birth_date": m.birth_date.isoformat() if m.birth_date else None,
                           "membership_number": m.membership_number, "rank": rank}
                          for rank, m in enumerate(ordered, 1)],
        "domains": domains,
    }
    payload = rules.payload(amc=s.amc_number, convention=s.convention_type, routing=s.routing_code,
                            membership_number=holder.membership_number, contract_number=contract_number,
                            valid_from=valid_from, valid_to=valid_to, responsable=True,
                            beneficiaries=len(ordered), domains=[d["code"] for d in domains])
    previous = await current(session, contract_number)
    version = 1
    if previous is not None:
        if previous.content == content:
            return previous
        version = previous.version + 1
        previous.replaced_at = now
        session.add(previous)
        for doc_id in (previous.pdf_document_id, previous.png_document_id):
            old = await session.get(Document, doc_id)
            if old is not None:
                old.replaced_at = now
                session.add(old)
        await session.flush()
    png = datamatrix_png(payload)
    view = {**content, "beneficiaries": [{**b, "birth_date_fr": datetime.fromisoformat(b["birth_date"]).strftime("%d/%m/%Y")
                                          if b["birth_date"] else ""} for b in content["beneficiaries"]],
            "valid_from": valid_from, "valid_to": valid_to}
    pdf = await docs.renderer.render("card.html", {
        "title": "Attestation de tiers payant", "mutuelle": docs.mutuelle(), "card": view,
        "datamatrix_src": "data:image/png;base64," + base64.b64encode(png).decode(),
    })
    card_id = uuid.uuid4()
    ids = {}
    for kind, data, media, ext in (("card_pdf", pdf.data, "application/pdf", "pdf"), ("card_png", png, "image/png", "png")):
        doc_id = uuid.uuid4()
        key = f"cards/{contract_number.lower()}/{card_id}.{ext}"
        await docs.storage.put_bytes(key, data, media)
        session.add(Document(id=doc_id, member_id=holder.member_id, contract_number=contract_number, kind=kind,
                             title="Attestation de tiers payant", file_name=f"carte-tiers-payant-{valid_from.year}.{ext}",
                             media_type=media, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                             storage_key=key, scan_status="clean", period=valid_from,
                             pages=pdf.pages if kind == "card_pdf" else None, created_at=now))
        ids[kind] = doc_id
    card = Card(id=card_id, contract_number=contract_number, version=version, holder_member_id=holder.member_id,
                valid_from=valid_from, valid_to=valid_to, content=content, payload=payload,
                pdf_document_id=ids["card_pdf"], png_document_id=ids["card_png"], issued_at=now)
    session.add(card)
    await session.flush()
    return card


async def card_for(docs: Documents, member_id: uuid.UUID) -> Card:
    async with docs.db.transaction() as session:
        member = await members.get(session, member_id)
        card = await current(session, member.contract_number) if member and member.contract_number else None
    if card is None:
        raise ProblemError(404, "no_card", "Pas encore de carte",
                           "Votre attestation de tiers payant n'est pas encore disponible.")
    return card
