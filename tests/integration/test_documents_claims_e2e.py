"""An invoice from upload to statement, every step done by the real services, nothing published by
the test: the member uploads a PDF and a JPEG through the gateway, clamd scans them, documents
publishes InvoiceSubmitted, claims opens a paper claim, an agent values it in the back office,
claims settles it, documents issues the statement PDF, notifications mails the member once."""

from __future__ import annotations

import time
import uuid
from datetime import date

import pytest

from shared.contracts.topics import DOCUMENTS_DOCUMENTS
from tests.integration.claims_helpers import claims_events, db_query, enrol_family, log_in, queued_claim
from tests.integration.documents_support import (
    SUBMITTED,
    Session,
    documents_db,
    download,
    events,
    jpeg_bytes,
    pdf_bytes,
    pdf_text,
    pdf_xmp,
    upload,
    wait_status,
    wait_until,
)
from tests.integration.test_notification_alerts import wait_for_subject, with_subject

REIMBURSEMENT = "Nouveau remboursement disponible"
DOCUMENT = "Nouveau document disponible dans votre espace"


@pytest.fixture(scope="module")
def holder(system, gateway, mailbox, tmp_path_factory) -> Session:
    # CONFORT pays osteopathy (40 € a session); coverage from 1 January, so any day this year is covered.
    [person] = enrol_family(system, tmp_path_factory.mktemp("e2e"), "CONFORT",
                            [("Inès", "holder", date(1988, 6, 14), "Moreau-Parcours")])
    headers = log_in(gateway, mailbox, person.member)
    wait_until(lambda: documents_db(system, "SELECT 1 FROM members WHERE member_id = $1 AND contract_number IS NOT NULL",
                                    person.member_id), what="documents knows the member")
    return Session(person.member, headers, str(person.member_id))


def test_an_uploaded_invoice_is_valued_by_an_agent_and_ends_as_a_statement_and_one_e_mail(
        system, gateway, mailbox, backoffice, agent, holder):
    address = holder.member.email
    before = {s: len(with_subject(mailbox, address, s)) for s in (REIMBURSEMENT, DOCUMENT)}
    care_day = date.today().isoformat()

    answer = upload(gateway, holder, [("facture-osteo.pdf", pdf_bytes("Facture osteopathie 60 EUR"), "application/pdf"),
                                      ("recu.jpg", jpeg_bytes(7), "image/jpeg")],
                    care_type="osteopathy", care_date=care_day, amount_charged="60.00")
    assert answer.status_code == 202, answer.text
    submission_id = answer.json()["submission_id"]
    document_ids = sorted(f["document_id"] for f in answer.json()["files"])

    # clamd passes both files; documents announces the submission; claims opens a claim for review.
    submitted = wait_status(gateway, holder, submission_id, SUBMITTED)
    assert {f["scan_status"] for f in submitted["files"]} == {"clean"}
    [announced] = events(system, DOCUMENTS_DOCUMENTS, "documents.InvoiceSubmitted",
                         lambda p: p["submission_id"] == submission_id)
    assert sorted(announced["document_ids"]) == document_ids
    claim = queued_claim(backoffice, uuid.UUID(submission_id))
    assert (claim["status"], claim["care_type"], claim["source"]) == ("needs_review", "osteopathy", "upload")
    in_review = wait_status(gateway, holder, submission_id, "in_review")
    assert "gestionnaire" in in_review["status_message"]

    # The agent values the invoice: 60 € charged, CONFORT's 40 € a session, 20 € left to the member.
    valued = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim['id']}/valuation", json={"lines": [
        {"act_code": "OSTEO", "act_label": "Séance d'ostéopathie", "amount_charged_cents": 6000},
    ]})
    assert valued.status_code == 200, valued.text
    assert valued.json()["status"] == "settled"
    assert valued.json()["history"][-1]["actor"] == f"agent:{agent.id}"
    [line] = valued.json()["lines"]
    assert (line["mutuelle_paid_cents"], line["out_of_pocket_cents"]) == (4000, 2000)
    [settled] = claims_events(system, lambda e: e["event_type"] == "claims.ClaimSettled"
                              and e["payload"]["claim_id"] == claim["id"], expected=1)
    assert settled["payload"]["submission_id"] == submission_id

    # The member sees it everywhere: the submission, the reimbursement line, the statement.
    done = wait_status(gateway, holder, submission_id, "settled")
    assert "relevé" in done["status_message"]
    mine = gateway.get(f"/api/v1/claims/reimbursements/{line['id']}", headers=holder.headers)
    assert mine.status_code == 200 and mine.json()["claim"]["source"] == "upload"
    [statement] = wait_until(lambda: [d for d in gateway.get("/api/v1/documents", params={"type": "statement"},
                                                             headers=holder.headers).json()["items"]],
                             timeout=60, what="the statement in the member's documents")
    [issued] = events(system, DOCUMENTS_DOCUMENTS, "documents.DocumentIssued", lambda p: p["document_id"] == statement["id"])
    assert issued["document_type"] == "statement" and issued["delivery"] == "online"
    pdf = download(gateway, holder, statement["id"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Relevé de prestations", "Inès Moreau-Parcours", "Séance d'ostéopathie", "60,00", "40,00",
                     "20,00", holder.member.contract_number, "Page 1 sur 1"):
        assert expected in text, expected
    assert b'pdfaid:part="3"' in pdf_xmp(pdf.content)

    # One settlement, one e-mail: the reimbursement alert, saying nothing of the care; the
    # statement is not announced again (alerts are on by default; see test_notification_alerts).
    messages = wait_for_subject(mailbox, address, REIMBURSEMENT, before[REIMBURSEMENT] + 1)
    body = messages[-1].get_body(("plain",)).get_content()
    assert "ostéopathie" not in body.lower() and "60,00" not in body
    [event_id] = [r["event_id"] for r in documents_db(system, "SELECT event_id FROM outbox WHERE event_type ="
                  " 'documents.DocumentIssued' AND envelope->'payload'->>'document_id' = $1", statement["id"])]
    wait_until(lambda: db_query(system, "notifications", "SELECT 1 FROM inbox WHERE event_id = $1", event_id),
               timeout=60, what="notifications handled the DocumentIssued")
    assert db_query(system, "notifications", "SELECT 1 FROM alerts_sent WHERE subject = $1", statement["id"]) == []
    time.sleep(1)
    assert len(with_subject(mailbox, address, REIMBURSEMENT)) == before[REIMBURSEMENT] + 1
    assert len(with_subject(mailbox, address, DOCUMENT)) == before[DOCUMENT]
