"""Every back-office action is recorded: who, what, on which thread or letter, when."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from documents.adapters.tables import AgentAction


def record(session, agent_id: uuid.UUID, action: str, target_type: str, target_id: uuid.UUID, **detail) -> None:
    session.add(AgentAction(agent_id=agent_id, action=action, target_type=target_type, target_id=target_id,
                            detail={k: str(v) for k, v in detail.items()}, at=datetime.now(UTC)))
