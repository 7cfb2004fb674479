"""The events claims reacts to."""

from claims.service_layer import intake
from shared.contracts import topics
from shared.contracts.documents import InvoiceSubmitted
from shared.contracts.identity import MemberEnrolled, MemberRegistered
from shared.platform.messaging import EventConsumer, HandlerContext


def build_consumer() -> EventConsumer:
    consumer = EventConsumer("claims", (topics.IDENTITY_MEMBERS, topics.DOCUMENTS_DOCUMENTS))

    @consumer.on(MemberRegistered)
    async def member_registered(ctx: HandlerContext, event: MemberRegistered) -> None:
        await intake.record_member(ctx.session, event)

    @consumer.on(MemberEnrolled)
    async def member_enrolled(ctx: HandlerContext, event: MemberEnrolled) -> None:
        await intake.record_enrolment(ctx.session, event)

    @consumer.on(InvoiceSubmitted)
    async def invoice_submitted(ctx: HandlerContext, event: InvoiceSubmitted) -> None:
        await intake.open_paper_claim(ctx.session, event)

    return consumer
