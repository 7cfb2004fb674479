"""The "something is waiting in your space" e-mails, on the real broker and SMTP sink: a settled
claim (claims.ClaimSettled), a document put online (documents.DocumentIssued), an answer from
the management centre (documents.MessageAnswered). The events are written to Kafka the way the
services' outbox relays write them; the recipients are real accounts made through the gateway,
known to notifications from identity's own events. Also: the registry import with contracts."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest

from shared.contracts.claims import ClaimSettled, SettledLine
from shared.contracts.documents import DocumentIssued, MessageAnswered
from tests.integration.conftest import PASSWORD, DemoMember, publish_events
from tests.integration.system import ROOT
from tests.integration.test_account_creation import register_and_activate

REIMBURSEMENT = "Nouveau remboursement disponible"
DOCUMENT = "Nouveau document disponible dans votre espace"
ANSWER = "Vous avez reçu une réponse de votre centre de gestion"


def query(system, service: str, sql: str, *args):
    async def go():
        conn = await asyncpg.connect(system.db_url(service).replace("+asyncpg", ""))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def with_subject(mailbox, address: str, subject: str):
    return [m for m in mailbox.messages_to(address) if m["Subject"] == subject]


def wait_for_subject(mailbox, address: str, subject: str, count: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = with_subject(mailbox, address, subject)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{count} {subject!r} to {address} expected, got {len(with_subject(mailbox, address, subject))}")


def wait_until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def assert_says_nothing(message, *details: str) -> None:
    for body in (text_of(message), message.get_body(preferencelist=("html",)).get_content()):
        assert "€" not in body and not re.search(r"\d+[,.]\d{2}\b", body), body
        for detail in details:
            assert detail not in body


class Family:
    def __init__(self, holder: DemoMember, spouse: DemoMember, child: DemoMember) -> None:
        self.holder, self.spouse, self.child = holder, spouse, child
        self.ids: dict[str, uuid.UUID] = {}
        self.tokens: dict[str, str] = {}


@pytest.fixture(scope="module")
def family(system, gateway, mailbox, tmp_path_factory) -> Family:
    """A CONFORT contract imported with the new columns: holder and spouse with activated accounts,
    a child without an account."""
    base = uuid.uuid4().int % 10**7
    contract = f"F{base:07d}"
    people = [
        DemoMember(f"7{base:07d}1", contract, "Moreau", "Claire", date(1984, 3, 9)),
        DemoMember(f"7{base:07d}2", contract, "Moreau", "Hugo", date(1982, 8, 21)),
        DemoMember(f"7{base:07d}3", contract, "Moreau", "Jade", date(2015, 1, 30)),
    ]
    path = tmp_path_factory.mktemp("family") / "family.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date", "plan_code",
                         "role", "coverage_start"])
        for person, role in zip(people, ("spouse", "holder", "child")):  # the holder is not the first row
            writer.writerow([person.membership_number, contract, person.last_name, person.first_name,
                             person.birth_date, "CONFORT", role, "2025-01-01"])
    env = {**os.environ, "IDENTITY_DATABASE_URL": system.db_url("identity")}
    subprocess.run([sys.executable, "-m", "identity.entrypoints.cli", "import-members", str(path)],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
    spouse, holder, child = people
    result = Family(holder, spouse, child)
    for name, member in (("holder", holder), ("spouse", spouse)):
        register_and_activate(gateway, mailbox, member)
        session = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
        assert session.status_code == 200, session.text
        result.tokens[name] = session.json()["access_token"]
        me = gateway.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {result.tokens[name]}"})
        result.ids[name] = uuid.UUID(me.json()["member_id"])
    [row] = query(system, "identity", "SELECT id FROM members WHERE membership_number = $1", child.membership_number)
    result.ids["child"] = row["id"]
    # notifications knows both accounts as activated (from identity's events) before anything is published.
    wait_until(
        lambda: len(query(system, "notifications", "SELECT 1 FROM recipients WHERE member_id = ANY($1) AND activated",
                          [result.ids["holder"], result.ids["spouse"]])) == 2,
        "notifications' projection has both accounts activated",
    )
    return result


def settled(family: Family, claim_id: uuid.UUID | None = None) -> ClaimSettled:
    line = SettledLine(
        line_id=uuid.uuid4(), line_number=1, beneficiary_member_id=family.ids["child"], beneficiary_name="Jade Moreau",
        care_date=date(2026, 11, 20), act_code="G", act_label="Consultation généraliste Dr Lambert", quantity=1,
        amount_charged_cents=3000, secu_base_cents=3000, secu_rate_pct=70, secu_paid_cents=1900,
        participation_cents=200, mutuelle_paid_cents=900, out_of_pocket_cents=200, payee="member", status="paid",
    )
    return ClaimSettled(
        claim_id=claim_id or uuid.uuid4(), contract_number=family.holder.contract_number,
        holder_member_id=family.ids["holder"], beneficiary_member_ids=[family.ids["child"], family.ids["spouse"]],
        source="noemie", external_ref=f"D{uuid.uuid4().hex[:10]}", status="settled", lines=[line],
        total_charged_cents=3000, total_secu_paid_cents=1900, total_mutuelle_paid_cents=900,
        total_out_of_pocket_cents=200, settled_at=datetime.now(UTC),
    )


def test_the_registry_import_records_the_contract(system, family):
    rows = query(system, "identity", "SELECT membership_number, plan_code, role, coverage_start FROM members "
                                     "WHERE contract_number = $1 ORDER BY membership_number", family.holder.contract_number)
    assert [(r["plan_code"], r["role"], r["coverage_start"]) for r in rows] == [
        ("CONFORT", "spouse", date(2025, 1, 1)), ("CONFORT", "holder", date(2025, 1, 1)), ("CONFORT", "child", date(2025, 1, 1))
    ]


def test_a_settled_claim_mails_the_holder_and_the_beneficiary_with_an_account_once(system, gateway, mailbox, family):
    holder, spouse = family.holder.email, family.spouse.email
    before = {a: len(with_subject(mailbox, a, REIMBURSEMENT)) for a in (holder, spouse)}
    claim = settled(family)
    [first] = publish_events(system, [(claim, str(family.ids["holder"]))], producer="claims")
    # A redelivery (the same envelope), the same claim settled again (a new event), then another claim.
    publish_events(system, [first, (settled(family, claim.claim_id), str(family.ids["holder"])),
                            (settled(family), str(family.ids["holder"]))], producer="claims")
    for address in (holder, spouse):
        messages = wait_for_subject(mailbox, address, REIMBURSEMENT, before[address] + 2)
        # The second claim's e-mail is there, so the repeats were handled before it (same partition).
        time.sleep(1)
        assert len(with_subject(mailbox, address, REIMBURSEMENT)) == before[address] + 2
        message = messages[-1]
        assert f"{gateway.base_url}/remboursements" in text_of(message)
        assert_says_nothing(message, "Consultation", "Lambert", "Jade", "généraliste")
    assert "Bonjour Hugo Moreau" in text_of(with_subject(mailbox, holder, REIMBURSEMENT)[-1])
    assert with_subject(mailbox, family.child.email, REIMBURSEMENT) == []


def test_no_reimbursement_e_mail_with_alerts_off(system, gateway, mailbox, family):
    spouse_headers = {"Authorization": f"Bearer {family.tokens['spouse']}"}
    response = gateway.put("/api/v1/identity/me/preferences", headers=spouse_headers,
                           json={"paperless": True, "reimbursement_alerts": False})
    assert response.status_code == 200, response.text
    wait_until(
        lambda: query(system, "notifications", "SELECT reimbursement_alerts FROM recipients WHERE member_id = $1",
                      family.ids["spouse"])[0]["reimbursement_alerts"] is False,
        "notifications knows the spouse turned alerts off",
    )
    holder_before = len(with_subject(mailbox, family.holder.email, REIMBURSEMENT))
    spouse_before = len(with_subject(mailbox, family.spouse.email, REIMBURSEMENT))
    publish_events(system, [(settled(family), str(family.ids["holder"]))], producer="claims")
    wait_for_subject(mailbox, family.holder.email, REIMBURSEMENT, holder_before + 1)
    time.sleep(1)
    assert len(with_subject(mailbox, family.spouse.email, REIMBURSEMENT)) == spouse_before
    gateway.put("/api/v1/identity/me/preferences", headers=spouse_headers,
                json={"paperless": True, "reimbursement_alerts": True})


def test_a_document_online_mails_once_and_one_by_post_does_not(system, gateway, mailbox, family):
    member_id, address = family.ids["holder"], family.holder.email
    before = len(with_subject(mailbox, address, DOCUMENT))

    def issued(document_id, delivery):
        return (DocumentIssued(document_id=document_id, member_id=member_id, document_type="contribution_call",
                               title="Appel de cotisation 2027", delivery=delivery, issued_at=datetime.now(UTC)),
                str(member_id))

    first_document, last_document = uuid.uuid4(), uuid.uuid4()
    [first] = publish_events(system, [issued(first_document, "online")], producer="documents")
    publish_events(system, [first, issued(first_document, "online"), issued(uuid.uuid4(), "post"),
                            issued(last_document, "online")], producer="documents")
    messages = wait_for_subject(mailbox, address, DOCUMENT, before + 2)
    time.sleep(1)
    assert len(with_subject(mailbox, address, DOCUMENT)) == before + 2
    assert f"{gateway.base_url}/documents" in text_of(messages[-1])
    assert_says_nothing(messages[-1], "cotisation", "Appel")


def test_a_claims_statement_is_announced_only_to_a_member_without_reimbursement_alerts(system, gateway, mailbox, family):
    """One settlement, one e-mail: the statement documents issues for a settled claim is not
    announced again to whom the reimbursement alert went; with alerts off it is."""
    spouse_headers = {"Authorization": f"Bearer {family.tokens['spouse']}"}
    assert gateway.put("/api/v1/identity/me/preferences", headers=spouse_headers,
                       json={"paperless": True, "reimbursement_alerts": False}).status_code == 200
    wait_until(
        lambda: query(system, "notifications", "SELECT reimbursement_alerts FROM recipients WHERE member_id = $1",
                      family.ids["spouse"])[0]["reimbursement_alerts"] is False,
        "notifications knows the spouse turned alerts off",
    )
    try:
        documents = {name: uuid.uuid4() for name in ("holder_statement", "holder_summary", "spouse_statement")}

        def issued(name, member, kind):
            return (DocumentIssued(document_id=documents[name], member_id=family.ids[member], document_type=kind,
                                   title="Relevé de prestations", delivery="online", issued_at=datetime.now(UTC)),
                    str(family.ids[member]))

        spouse_before = len(with_subject(mailbox, family.spouse.email, DOCUMENT))
        # In one partition (the holder's key) the summary comes after the statement: once the
        # summary is recorded as alerted, the statement has been handled too.
        publish_events(system, [issued("holder_statement", "holder", "statement"),
                                issued("holder_summary", "holder", "monthly_statement"),
                                issued("spouse_statement", "spouse", "statement")], producer="documents")
        alerted = {}
        wait_until(lambda: alerted.update({r["subject"]: r["member_id"] for r in query(
            system, "notifications", "SELECT subject, member_id FROM alerts_sent WHERE kind = 'document_available'"
            " AND subject = ANY($1::text[])", [str(d) for d in documents.values()])}) or len(alerted) >= 2,
            "the summary and the spouse's statement alerted")
        assert set(alerted) == {str(documents["holder_summary"]), str(documents["spouse_statement"])}
        wait_for_subject(mailbox, family.spouse.email, DOCUMENT, spouse_before + 1)
    finally:
        gateway.put("/api/v1/identity/me/preferences", headers=spouse_headers,
                    json={"paperless": True, "reimbursement_alerts": True})


def test_an_answer_from_the_management_centre_mails_once(system, gateway, mailbox, family):
    member_id, address = family.ids["spouse"], family.spouse.email
    before = len(with_subject(mailbox, address, ANSWER))
    answer = (MessageAnswered(thread_id=uuid.uuid4(), member_id=member_id, subject_code="reimbursement",
                              answered_at=datetime.now(UTC)), str(member_id))
    [first] = publish_events(system, [answer], producer="documents")
    later = (MessageAnswered(thread_id=uuid.uuid4(), member_id=member_id, subject_code="card",
                             answered_at=datetime.now(UTC)), str(member_id))
    publish_events(system, [first, later], producer="documents")
    messages = wait_for_subject(mailbox, address, ANSWER, before + 2)
    time.sleep(1)
    assert len(with_subject(mailbox, address, ANSWER)) == before + 2
    assert f"{gateway.base_url}/messages" in text_of(messages[-1])
    assert_says_nothing(messages[-1], "reimbursement", "card")
