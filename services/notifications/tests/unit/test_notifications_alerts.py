"""Alerts for a new reimbursement, document or answer: who gets one, and what it (does not) say."""

import re
import uuid

import pytest

from notifications.adapters.templates import Templates
from notifications.domain.alerts import (
    Reachable, account_alert_recipient, claim_alert_recipients, document_alert_recipient,
)


def reachable(member_id, *, email="x@example.org", activated=True, alerts=True):
    return Reachable(member_id, email, activated, alerts)


def test_a_claim_alerts_the_holder_and_beneficiaries_with_their_own_activated_account_once_each():
    holder, spouse, child, stranger = (uuid.uuid4() for _ in range(4))
    known = {holder: reachable(holder), spouse: reachable(spouse), child: reachable(child, activated=False)}
    # The child has no activated account, the stranger no account at all: neither is mailed.
    assert claim_alert_recipients(holder, [spouse, child, stranger, spouse, holder], known) == [holder, spouse]


def test_alerts_off_pending_accounts_and_missing_addresses_mean_no_alert():
    holder, child = uuid.uuid4(), uuid.uuid4()
    assert claim_alert_recipients(holder, [child], {holder: reachable(holder, alerts=False), child: reachable(child)}) == [child]
    assert claim_alert_recipients(holder, [holder], {holder: reachable(holder, activated=False)}) == []
    assert claim_alert_recipients(holder, [], {holder: reachable(holder, email=None)}) == []
    # Documents and answers do not depend on the reimbursement alerts.
    assert account_alert_recipient(holder, {holder: reachable(holder, alerts=False)}) == holder
    assert account_alert_recipient(holder, {holder: reachable(holder, activated=False)}) is None
    assert account_alert_recipient(holder, {}) is None


def test_a_claims_statement_is_announced_only_to_whom_the_reimbursement_alert_did_not_go():
    member = uuid.uuid4()
    alerts_on, alerts_off = {member: reachable(member)}, {member: reachable(member, alerts=False)}
    assert document_alert_recipient(member, "statement", alerts_on) is None  # the reimbursement e-mail said it
    assert document_alert_recipient(member, "statement", alerts_off) == member
    for other in ("monthly_statement", "contribution_call", "tax_certificate", "card"):
        assert document_alert_recipient(member, other, alerts_on) == member
    assert document_alert_recipient(member, "statement", {member: reachable(member, alerts=False, activated=False)}) is None
    assert document_alert_recipient(member, "statement", {}) is None


@pytest.mark.parametrize(
    ("kind", "subject", "path"),
    [
        ("reimbursement_available", "Nouveau remboursement disponible", "/remboursements"),
        ("document_available", "Nouveau document disponible dans votre espace", "/documents"),
        ("message_answered", "Vous avez reçu une réponse de votre centre de gestion", "/messages"),
    ],
)
def test_each_alert_is_french_has_its_link_and_no_detail(kind, subject, path):
    link = f"https://espace.example{path}"
    email = Templates().render(kind, first_name="Zoé", last_name="N'Diaye", link=link)
    assert email.subject == subject
    assert "Bonjour Zoé N'Diaye" in email.text and "N&#39;Diaye" in email.html
    assert link in email.text and f'href="{link}"' in email.html
    for body in (email.text, email.html):
        assert "€" not in body and not re.search(r"\d+[,.]\d{2}", body)
        assert "aucun détail" in body
