"""The events notifications reacts to."""

from shared.contracts import topics
from shared.contracts.identity import ActivationLinkIssued
from shared.platform.messaging import EventConsumer, HandlerContext

from notifications.service_layer import emails
from notifications.service_layer.emails import Notifications


def build_consumer(notifications: Notifications) -> EventConsumer:
    consumer = EventConsumer("notifications", (topics.IDENTITY_MEMBERS,))

    @consumer.on(ActivationLinkIssued)
    async def activation_link_issued(ctx: HandlerContext, event: ActivationLinkIssued) -> None:
        await emails.on_activation_link_issued(notifications, ctx, event)

    return consumer
