"""Every event type the system knows, by its `event_type` name."""

from shared.contracts.claims import ClaimReceived, ClaimRejected, ClaimSettled, ReimbursementDisputed
from shared.contracts.documents import DocumentIssued, InvoiceSubmitted, MessageAnswered
from shared.contracts.envelope import Event
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
    ProfileUpdated,
)
from shared.contracts.notifications import EmailFailed, EmailSent

EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (
        MemberRegistered,
        ActivationLinkIssued,
        AccountActivated,
        MemberEnrolled,
        AccountAlreadyExists,
        EmailChangeRequested,
        EmailChanged,
        ProfileUpdated,
        CommunicationPreferencesChanged,
        PasswordResetRequested,
        PasswordChanged,
        EmailSent,
        EmailFailed,
        ClaimReceived,
        ClaimSettled,
        ClaimRejected,
        ReimbursementDisputed,
        InvoiceSubmitted,
        DocumentIssued,
        MessageAnswered,
    )
}
