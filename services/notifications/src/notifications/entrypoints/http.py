"""notifications' HTTP API: the member's own delivery receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from notifications.service_layer import emails
from notifications.service_layer.emails import Notifications
from shared.platform.auth import CurrentMember
from shared.platform.problems import problem_responses

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


async def get_notifications(request: Request) -> Notifications:
    return request.app.state.notifications


NotificationsDep = Annotated[Notifications, Depends(get_notifications)]


class DeliveryReceipt(BaseModel):
    id: uuid.UUID
    kind: str
    subject: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class DeliveryReceipts(BaseModel):
    items: list[DeliveryReceipt]


@router.get("/deliveries", summary="E-mails sent to me", responses=problem_responses(401, 422))
async def my_deliveries(
    member: CurrentMember,
    notifications: NotificationsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DeliveryReceipts:
    # Only the caller's own receipts: the member id comes from the verified token, never the request.
    rows = await emails.deliveries_of(notifications, member.member_id, limit)
    return DeliveryReceipts(
        items=[
            DeliveryReceipt(id=r.id, kind=r.kind, subject=r.subject, status=r.status, created_at=r.created_at, sent_at=r.sent_at)
            for r in rows
        ]
    )
