"""Topic names: one per producing aggregate, versioned. Keys are member ids (order per member)."""

IDENTITY_MEMBERS = "identity.members.v1"
CLAIMS_CLAIMS = "claims.claims.v1"
DOCUMENTS_DOCUMENTS = "documents.documents.v1"
NOTIFICATIONS_DELIVERIES = "notifications.deliveries.v1"

ALL = (IDENTITY_MEMBERS, CLAIMS_CLAIMS, DOCUMENTS_DOCUMENTS, NOTIFICATIONS_DELIVERIES)


def dead_letter(topic: str) -> str:
    """Where a consumer parks a message it could not handle after its retries."""
    return f"{topic}.dlq"
