"""The events notifications reacts to: each one turns into the e-mails its handler queues."""

from functools import partial

from shared.contracts import topics
from shared.contracts.identity import (
    AccountAlreadyExists,
    ActivationLinkIssued,
    EmailChanged,
    EmailChangeRequested,
    PasswordChanged,
    PasswordResetRequested,
)
from shared.platform.messaging import EventConsumer

from notifications.service_layer import emails
from notifications.service_layer.emails import Notifications

HANDLERS = {
    ActivationLinkIssued: emails.on_activation_link_issued,
    PasswordResetRequested: emails.on_password_reset_requested,
    PasswordChanged: emails.on_password_changed,
    AccountAlreadyExists: emails.on_account_already_exists,
    EmailChangeRequested: emails.on_email_change_requested,
    EmailChanged: emails.on_email_changed,
}


def build_consumer(notifications: Notifications) -> EventConsumer:
    consumer = EventConsumer("notifications", (topics.IDENTITY_MEMBERS,))
    for event_cls, handler in HANDLERS.items():
        consumer.on(event_cls)(partial(handler, notifications))
    return consumer
