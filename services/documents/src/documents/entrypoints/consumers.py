"""The events documents reacts to: identity's members (projection, card) and claims' claims
(submission status, statements, disputes). They only record: the card to reissue and the
statement to issue are rendered afterwards (service_layer/rendering.py), never in the batch."""

from documents.service_layer import cards, members, messages, statements
from documents.service_layer.context import Documents
from shared.contracts import topics
from shared.contracts.claims import ClaimReceived, ClaimRejected, ClaimSettled, ReimbursementDisputed
from shared.contracts.identity import (
    CommunicationPreferencesChanged,
    MemberEnrolled,
    MemberRegistered,
    ProfileUpdated,
)
from shared.platform.messaging import EventConsumer, HandlerContext


def build_consumer(docs: Documents) -> EventConsumer:
    consumer = EventConsumer("documents", (topics.IDENTITY_MEMBERS, topics.CLAIMS_CLAIMS))

    @consumer.on(MemberRegistered)
    async def member_registered(ctx: HandlerContext, event: MemberRegistered) -> None:
        await members.record_member(ctx.session, event)

    @consumer.on(MemberEnrolled)
    async def member_enrolled(ctx: HandlerContext, event: MemberEnrolled) -> None:
        previous_contract, changed = await members.record_enrolment(ctx.session, event, ctx.envelope.occurred_at)
        if changed:
            cards.queue_reissue(ctx.session, event.contract_number)
            if previous_contract and previous_contract != event.contract_number:
                cards.queue_reissue(ctx.session, previous_contract)  # left that contract

    @consumer.on(ProfileUpdated)
    async def profile_updated(ctx: HandlerContext, event: ProfileUpdated) -> None:
        await members.record_address(ctx.session, event)

    @consumer.on(CommunicationPreferencesChanged)
    async def preferences_changed(ctx: HandlerContext, event: CommunicationPreferencesChanged) -> None:
        await members.record_preferences(ctx.session, event)

    @consumer.on(ClaimReceived)
    async def claim_received(ctx: HandlerContext, event: ClaimReceived) -> None:
        await statements.claim_received(ctx.session, event)

    @consumer.on(ClaimSettled)
    async def claim_settled(ctx: HandlerContext, event: ClaimSettled) -> None:
        await statements.claim_settled(ctx.session, event)

    @consumer.on(ClaimRejected)
    async def claim_rejected(ctx: HandlerContext, event: ClaimRejected) -> None:
        await statements.claim_rejected(ctx.session, event)

    @consumer.on(ReimbursementDisputed)
    async def reimbursement_disputed(ctx: HandlerContext, event: ReimbursementDisputed) -> None:
        await messages.dispute_opened(ctx.session, event)

    return consumer
