"""Who gets an alert (pure).

A settled claim alerts the contract holder (who sees every beneficiary's lines) and each
beneficiary who is another member with an account of their own; only activated accounts, only
with reimbursement alerts on, and each member once however often they appear.

A document online is announced to its member, except the statement of one settled claim to a
member with reimbursement alerts on: the reimbursement e-mail about that same claim has already
sent them to their space, and one settlement is one e-mail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Reachable:
    member_id: uuid.UUID
    email: str | None
    activated: bool
    reimbursement_alerts: bool

    @property
    def mailable(self) -> bool:
        return self.activated and bool(self.email)


def claim_alert_recipients(
    holder: uuid.UUID, beneficiaries: list[uuid.UUID], known: dict[uuid.UUID, Reachable]
) -> list[uuid.UUID]:
    chosen: list[uuid.UUID] = []
    for member_id in [holder, *beneficiaries]:
        who = known.get(member_id)
        if who is None or member_id in chosen or not who.mailable or not who.reimbursement_alerts:
            continue
        chosen.append(member_id)
    return chosen


def account_alert_recipient(member_id: uuid.UUID, known: dict[uuid.UUID, Reachable]) -> uuid.UUID | None:
    """A document or an answer for one member: mailed when the account can be reached."""
    who = known.get(member_id)
    return member_id if who is not None and who.mailable else None


# A settled claim's own statement (documents issues one per ClaimSettled); the monthly summary
# is not tied to one reimbursement e-mail and is always announced.
CLAIM_STATEMENT = "statement"


def document_alert_recipient(member_id: uuid.UUID, document_type: str,
                             known: dict[uuid.UUID, Reachable]) -> uuid.UUID | None:
    chosen = account_alert_recipient(member_id, known)
    if chosen is not None and document_type == CLAIM_STATEMENT and known[member_id].reimbursement_alerts:
        return None
    return chosen
