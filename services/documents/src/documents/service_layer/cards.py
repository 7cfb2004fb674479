"""The contract's digital tiers-payant card: reissued when its beneficiaries or plan change
(MemberEnrolled), the previous version marked replaced; valid for the calendar year.

The consumer only records which contracts changed (`queue_reissue`); once the batch's handlers
have run, `reissue_queued` records each one's new card once, as `pending` documents with no
file yet: several MemberEnrolled of one contract in a batch make one card. A card still pending
when the contract changes again is updated in place (nobody has seen it), so however many
events arrive before it renders, it renders once, with the final content. Rendering is the
renderer's (`render_job`, from service_layer/rendering.py), or a member's asking for it first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.adapters.tables import Card, Document, Member
from documents.domain import card as rules
from documents.service_layer import issuing, members
from documents.service_layer.context import Documents
from shared.platform.problems import ProblemError

TITLE = "Attestation de tiers payant"
_QUEUED = "documents.cards_to_reissue"  # key in the consumer transaction's session.info


async def current(session: AsyncSession, contract_number: str, *, for_update: bool = False) -> Card | None:
    query = select(Card).where(Card.contract_number == contract_number, Card.replaced_at.is_(None))
    return (await session.exec(query.with_for_update() if for_update else query)).first()


def queue_reissue(session: AsyncSession, contract_number: str) -> None:
    """The contract's card is to be reissued when this transaction's handlers are done. A rolled
    back transaction drops its session, and the queue with it."""
    session.info.setdefault(_QUEUED, set()).add(contract_number)


def reissue_queued(docs: Documents):
    """The consumer's `before_commit`: one reissue per contract the batch changed."""

    async def run(session: AsyncSession) -> None:
        # Sorted: two replicas' batches lock the contracts' members in the same order.
        for contract_number in sorted(session.info.pop(_QUEUED, ())):
            await reissue(docs, session, contract_number)

    return run


def _content(docs: Documents, contract_number: str, holder: Member, people: list[Member], today) -> tuple[dict, str]:
    valid_from, valid_to = rules.validity(today)
    s = docs.settings
    domains = [{"code": c, "label": label, "level": level} for c, label, level in rules.DOMAINS]
    ordered = sorted(people, key=lambda m: (m.member_id != holder.member_id, m.birth_date or today))
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
    return content, payload


async def reissue(docs: Documents, session: AsyncSession, contract_number: str) -> Card | None:
    """Records the contract's card for its members as they are now; renders nothing."""
    # Read with the rows locked: reissues of one contract (two members of it enrolled at once) are
    # serialised. Lock order, here and in the renderer: the contract's members, its card, the
    # card's documents.
    people = [m for m in await members.of_contract(session, contract_number, for_update=True)
              if m.coverage_end is None or m.coverage_end >= datetime.now(UTC).date()]
    holder = members.holder_of(people)
    if holder is None:
        return None
    now = datetime.now(UTC)
    content, payload = _content(docs, contract_number, holder, people, now.date())
    valid_from, valid_to = rules.validity(now.date())
    previous = await current(session, contract_number, for_update=True)
    version = 1
    if previous is not None:
        if previous.content == content:
            return previous
        pdf_doc = await session.get(Document, previous.pdf_document_id, with_for_update=True)
        if pdf_doc is not None and pdf_doc.render_status == issuing.PENDING:
            png_doc = await session.get(Document, previous.png_document_id, with_for_update=True)
            previous.holder_member_id, previous.valid_from, previous.valid_to = holder.member_id, valid_from, valid_to
            previous.content, previous.payload, previous.issued_at = content, payload, now
            session.add(previous)
            for doc in (pdf_doc, png_doc):
                if doc is not None:
                    doc.member_id, doc.period, doc.created_at = holder.member_id, valid_from, now
                    doc.file_name = _file_name(valid_from, doc.kind)
                    session.add(doc)
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
    ids = {}
    for kind, media in (("card_pdf", "application/pdf"), ("card_png", "image/png")):
        ids[kind] = uuid.uuid4()
        session.add(Document(id=ids[kind], member_id=holder.member_id, contract_number=contract_number, kind=kind,
                             title=TITLE, file_name=_file_name(valid_from, kind), media_type=media, scan_status="clean",
                             period=valid_from, render_status=issuing.PENDING, created_at=now))
    card = Card(id=uuid.uuid4(), contract_number=contract_number, version=version, holder_member_id=holder.member_id,
                valid_from=valid_from, valid_to=valid_to, content=content, payload=payload,
                pdf_document_id=ids["card_pdf"], png_document_id=ids["card_png"], issued_at=now)
    session.add(card)
    await session.flush()
    return card


def _file_name(valid_from, kind: str) -> str:
    return f"carte-tiers-payant-{valid_from.year}.{'pdf' if kind == 'card_pdf' else 'png'}"


def pending_query():
    """Current cards whose files are still to render, oldest first (for the renderer's claim)."""
    return (select(Card).join(Document, Document.id == Card.pdf_document_id)
            .where(Document.render_status == issuing.PENDING, Card.replaced_at.is_(None))
            .order_by(Document.created_at))


async def render_job(docs: Documents, session: AsyncSession, card: Card) -> issuing.RenderJob | None:
    """The card (row-locked by the caller) as a render job; None when already rendered."""
    pdf_doc = await session.get(Document, card.pdf_document_id, with_for_update=True, populate_existing=True)
    if pdf_doc is None or pdf_doc.render_status != issuing.PENDING:
        return None
    png_doc = await session.get(Document, card.png_document_id, with_for_update=True, populate_existing=True)
    view = {**card.content, "beneficiaries": [
        {**b, "birth_date_fr": datetime.fromisoformat(b["birth_date"]).strftime("%d/%m/%Y") if b["birth_date"] else ""}
        for b in card.content["beneficiaries"]], "valid_from": card.valid_from, "valid_to": card.valid_to}
    context = {"title": TITLE, "mutuelle": docs.mutuelle(), "card": view}

    async def finish(rendered) -> None:
        pdf, png = rendered
        prefix = f"cards/{card.contract_number.lower()}/{card.id}"
        # Both files stored before either row says so: a failure in between leaves both pending.
        await docs.storage.put_bytes(f"{prefix}.pdf", pdf.data, pdf_doc.media_type)
        await docs.storage.put_bytes(f"{prefix}.png", png, png_doc.media_type)
        issuing.stamp(pdf_doc, pdf.data, f"{prefix}.pdf", pdf.pages)
        issuing.stamp(png_doc, png, f"{prefix}.png", None)
        session.add(pdf_doc)
        session.add(png_doc)

    return issuing.RenderJob(pdf_doc, lambda: docs.renderer.render_card("card.html", context, card.payload), finish)


async def card_of(session: AsyncSession, document: Document) -> Card | None:
    """The card a card_pdf or card_png document belongs to."""
    column = Card.pdf_document_id if document.kind == "card_pdf" else Card.png_document_id
    return (await session.exec(select(Card).where(column == document.id))).first()


async def card_for(docs: Documents, member_id: uuid.UUID) -> Card:
    async with docs.db.transaction() as session:
        member = await members.get(session, member_id)
        card = await current(session, member.contract_number) if member and member.contract_number else None
    if card is None:
        raise ProblemError(404, "no_card", "Pas encore de carte",
                           "Votre attestation de tiers payant n'est pas encore disponible.")
    return card
