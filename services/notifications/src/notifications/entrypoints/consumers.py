"""The events notifications reacts to: identity's keep the projection of members' accounts
(notifications.service_layer.recipients) and mail the account's own messages; claims' and
documents' mail "something is waiting in your space" alerts (service_layer.alerts)."""

from functools import partial

from shared.contracts import topics
from shared.contracts.claims import ClaimSettled
from shared.contracts.documents import DocumentIssued, MessageAnswered
from shared.contracts.identity import (
    AccountActivated,
    AccountAlreadyExists,
    ActivationLinkIssued,
    CommunicationPreferencesChanged,
    EmailChanged,
    EmailChangeRequested,
    MemberEnrolled,
    MemberRegistered,
    PasswordChanged,
    PasswordResetRequested,
)
from shared.platform.messaging import EventConsumer

from notifications.service_layer import alerts, emails, recipients
from notifications.service_layer.emails import Notifications


def _both(*handlers):
    async def handle(notifications, ctx, event):
        for handler in handlers:
            await handler(notifications, ctx, event)

    return handle


HANDLERS = {
    MemberEnrolled: recipients.on_member_enrolled,
    MemberRegistered: recipients.on_member_registered,
    ActivationLinkIssued: _both(recipients.on_account_address, emails.on_activation_link_issued),
    AccountActivated: recipients.on_account_activated,
    CommunicationPreferencesChanged: recipients.on_preferences_changed,
    PasswordResetRequested: _both(recipients.on_account_address, emails.on_password_reset_requested),
    PasswordChanged: _both(recipients.on_account_address, emails.on_password_changed),
    AccountAlreadyExists: _both(recipients.on_account_address, emails.on_account_already_exists),
    EmailChangeRequested: emails.on_email_change_requested,
    EmailChanged: _both(recipients.on_account_address, emails.on_email_changed),
    ClaimSettled: alerts.on_claim_settled,
    DocumentIssued: alerts.on_document_issued,
    MessageAnswered: alerts.on_message_answered,
}

TOPICS = (topics.IDENTITY_MEMBERS, topics.CLAIMS_CLAIMS, topics.DOCUMENTS_DOCUMENTS)


def build_consumer(notifications: Notifications) -> EventConsumer:
    consumer = EventConsumer("notifications", TOPICS)
    for event_cls, handler in HANDLERS.items():
        consumer.on(event_cls)(partial(handler, notifications))
    return consumer
