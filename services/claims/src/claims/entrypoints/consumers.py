"""The events claims reacts to."""

from claims.service_layer import members
from shared.contracts import topics
from shared.contracts.identity import MemberRegistered
from shared.platform.messaging import EventConsumer, HandlerContext


def build_consumer() -> EventConsumer:
    consumer = EventConsumer("claims", (topics.IDENTITY_MEMBERS,))

    @consumer.on(MemberRegistered)
    async def member_registered(ctx: HandlerContext, event: MemberRegistered) -> None:
        await members.record_member(ctx.session, event)

    return consumer
