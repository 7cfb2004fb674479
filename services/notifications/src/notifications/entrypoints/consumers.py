"""The events notifications reacts to."""

from shared.contracts import topics
from shared.contracts.identity import ActivationLinkIssued, PasswordChanged, PasswordResetRequested
from shared.contracts.identity import AccountAlreadyExists, EmailChanged, EmailChangeRequested
from shared.platform.messaging import EventConsumer, HandlerContext

from notifications.service_layer import emails
from notifications.service_layer.emails import Notifications


def build_consumer(notifications: Notifications) -> EventConsumer:
    consumer = EventConsumer("notifications", (topics.IDENTITY_MEMBERS,))

    @consumer.on(ActivationLinkIssued)
    async def activation_link_issued(ctx: HandlerContext, event: ActivationLinkIssued) -> None:
        await emails.on_activation_link_issued(notifications, ctx, event)

    @consumer.on(PasswordResetRequested)
    async def password_reset_requested(ctx: HandlerContext, event: PasswordResetRequested) -> None:
        await emails.on_password_reset_requested(notifications, ctx, event)

    @consumer.on(PasswordChanged)
    async def password_changed(ctx: HandlerContext, event: PasswordChanged) -> None:
        await emails.on_password_changed(notifications, ctx, event)

    @consumer.on(AccountAlreadyExists)
    async def account_already_exists(ctx: HandlerContext, event: AccountAlreadyExists) -> None:
        await emails.on_account_already_exists(notifications, ctx, event)

    @consumer.on(EmailChangeRequested)
    async def email_change_requested(ctx: HandlerContext, event: EmailChangeRequested) -> None:
        await emails.on_email_change_requested(notifications, ctx, event)

    @consumer.on(EmailChanged)
    async def email_changed(ctx: HandlerContext, event: EmailChanged) -> None:
        await emails.on_email_changed(notifications, ctx, event)

    return consumer
