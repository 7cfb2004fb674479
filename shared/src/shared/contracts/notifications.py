"""Events published by notifications on `notifications.deliveries.v1`."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.contracts.envelope import Event
from shared.contracts.topics import NOTIFICATIONS_DELIVERIES


class EmailSent(Event):
    event_type = "notifications.EmailSent"
    topic = NOTIFICATIONS_DELIVERIES

    delivery_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    sent_at: datetime


class EmailFailed(Event):
    """An e-mail could not be delivered after every retry."""

    event_type = "notifications.EmailFailed"
    topic = NOTIFICATIONS_DELIVERIES

    delivery_id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    attempts: int
    error_type: str
    failed_at: datetime
