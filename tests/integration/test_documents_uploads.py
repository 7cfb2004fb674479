"""Invoice upload through the gateway on the real system: types by magic bytes, limits, the
antivirus (a real clamd with the shipped EICAR signature), dedupe, the submission following its
claim, the statement PDF from ClaimSettled, download links and who may follow them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime

import pytest

from documents.domain import links
from shared.contracts.claims import ClaimReceived, ClaimRejected, ClaimSettled, SettledLine
from shared.contracts.topics import DOCUMENTS_DOCUMENTS
from tests.integration.conftest import publish_events
from tests.integration.documents_support import (
    EICAR,
    SUBMITTED,
    documents_db,
    download,
    events,
    jpeg_bytes,
    kill_service,
    link_secret,
    open_session,
    pdf_bytes,
    pdf_text,
    pdf_xmp,
    publish,
    restart_services,
    submission,
    upload,
    wait_status,
    wait_until,
)


@pytest.fixture(scope="module")
def alice(system, gateway, mailbox, registry):
    return open_session(system, gateway, mailbox, registry.take())


@pytest.fixture(scope="module")
def bob(system, gateway, mailbox, registry):
    return open_session(system, gateway, mailbox, registry.take())


def settled_event(session, submission_id: uuid.UUID | None, claim_id: uuid.UUID) -> ClaimSettled:
    member_id = uuid.UUID(session.member_id)
    name = f"{session.member.first_name} {session.member.last_name}"
    lines = [
        SettledLine(line_id=uuid.uuid4(), line_number=1, beneficiary_member_id=member_id, beneficiary_name=name,
                    care_date=date(2026, 11, 20), act_code="G", act_label="Consultation généraliste", quantity=1,
                    amount_charged_cents=3000, secu_base_cents=3000, secu_rate_pct=70, secu_paid_cents=1900,
                    participation_cents=200, mutuelle_paid_cents=900, out_of_pocket_cents=200, payee="member",
                    status="paid"),
        SettledLine(line_id=uuid.uuid4(), line_number=2, beneficiary_member_id=member_id, beneficiary_name=name,
                    care_date=date(2026, 11, 20), act_code="OST", act_label="Séance d'ostéopathie", quantity=1,
                    amount_charged_cents=6000, secu_base_cents=0, secu_rate_pct=0, secu_paid_cents=0,
                    participation_cents=0, mutuelle_paid_cents=4000, out_of_pocket_cents=2000, payee="member",
                    status="paid"),
    ]
    return ClaimSettled(
        claim_id=claim_id, contract_number=session.member.contract_number, holder_member_id=member_id,
        beneficiary_member_ids=[member_id], source="upload", external_ref=str(submission_id or claim_id),
        submission_id=submission_id, status="settled", lines=lines, total_charged_cents=9000,
        total_secu_paid_cents=1900, total_mutuelle_paid_cents=4900, total_out_of_pocket_cents=2200,
        settled_at=datetime.now(UTC),
    )


def test_pdf_and_jpeg_are_scanned_clean_passed_on_and_the_status_follows_the_claim_to_a_statement(system, gateway, alice, bob):
    answer = upload(gateway, alice, [("facture.pdf", pdf_bytes("Facture osteo 60 EUR"), "application/pdf"),
                                     ("photo.jpg", jpeg_bytes(1), "image/jpeg")], comment="Séance du 20/11")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["duplicate"] is False and body["amount_charged_cents"] == 6000
    assert [f["media_type"] for f in body["files"]] == ["application/pdf", "image/jpeg"]
    submission_id = body["submission_id"]
    submitted = wait_status(gateway, alice, submission_id, SUBMITTED)
    assert {f["scan_status"] for f in submitted["files"]} == {"clean"}
    [event] = events(system, DOCUMENTS_DOCUMENTS, "documents.InvoiceSubmitted",
                     lambda p: p["submission_id"] == submission_id, settle=1.0)
    assert event["care_type"] == "osteopathy" and event["amount_charged_cents"] == 6000
    assert sorted(event["document_ids"]) == sorted(f["document_id"] for f in body["files"])
    # Server-side names only: the stored key is ours, not the member's file name.
    keys = [r["storage_key"] for r in documents_db(system, "SELECT storage_key FROM documents WHERE submission_id = $1",
                                                    uuid.UUID(submission_id))]
    assert all(k.startswith(f"uploads/{alice.member_id}/") and "facture" not in k for k in keys)
    # An uploaded, clean file downloads back with the safe headers.
    original = download(gateway, alice, body["files"][0]["document_id"])
    assert original.status_code == 200
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"].startswith("attachment;")
    assert original.headers["x-content-type-options"] == "nosniff"
    assert original.content == pdf_bytes("Facture osteo 60 EUR")

    claim_id = uuid.uuid4()
    publish(system, ClaimReceived(claim_id=claim_id, contract_number=alice.member.contract_number,
                                  holder_member_id=uuid.UUID(alice.member_id), beneficiary_member_id=uuid.UUID(alice.member_id),
                                  source="upload", external_ref=submission_id, submission_id=uuid.UUID(submission_id),
                                  status="needs_review", received_at=datetime.now(UTC)), key=alice.member_id)
    review = wait_status(gateway, alice, submission_id, "in_review")
    assert "gestionnaire" in review["status_message"]
    publish(system, settled_event(alice, uuid.UUID(submission_id), claim_id), key=alice.member_id)
    settled = wait_status(gateway, alice, submission_id, "settled")
    assert "relevé" in settled["status_message"]

    statements = wait_until(lambda: [d for d in gateway.get("/api/v1/documents", params={"type": "statement"},
                                                             headers=alice.headers).json()["items"]],
                            what="a statement in the member's documents")
    [statement] = statements
    assert statement["title"].startswith("Relevé de prestations du") and statement["delivery"] == "online"
    [issued] = events(system, DOCUMENTS_DOCUMENTS, "documents.DocumentIssued", lambda p: p["document_id"] == statement["id"])
    assert issued["document_type"] == "statement" and issued["delivery"] == "online"
    pdf = download(gateway, alice, statement["id"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Relevé de prestations", "Zoé Lefèvre-N'Diaye", "Consultation généraliste", "Séance d'ostéopathie",
                     "30,00", "19,00", "9,00", "60,00", "40,00", "90,00", "49,00", "22,00", "Page 1 sur 1",
                     alice.member.contract_number):
        assert expected in text, expected
    xmp = pdf_xmp(pdf.content)
    assert b'pdfaid:part="3"' in xmp and b'pdfaid:conformance="B"' in xmp

    # Bob sees none of it: not in his list, not by id, no link, and not with Alice's link.
    assert gateway.get("/api/v1/documents", headers=bob.headers).json()["items"] == []
    assert gateway.get(f"/api/v1/documents/{statement['id']}", headers=bob.headers).status_code == 404
    assert gateway.post(f"/api/v1/documents/{statement['id']}/download-links", headers=bob.headers).status_code == 404
    assert gateway.get(f"/api/v1/documents/submissions/{submission_id}", headers=bob.headers).status_code == 404
    alice_link = gateway.post(f"/api/v1/documents/{statement['id']}/download-links", headers=alice.headers).json()["url"]
    forged = links.sign(links.LinkGrant(uuid.UUID(statement["id"]), uuid.UUID(bob.member_id), int(time.time()) + 300),
                        b"not-the-key")
    assert gateway.get(f"/api/v1/documents/downloads/{forged}").status_code == 404
    token = alice_link.rsplit("/", 1)[1]
    body_part, mac = token.split(".")
    assert gateway.get(f"/api/v1/documents/downloads/{body_part}.{mac[:-2]}AA").status_code == 404
    # A genuine link for Bob to Alice's document (as if the key leaked into Bob's hands) is still refused.
    stolen = links.sign(links.LinkGrant(uuid.UUID(statement["id"]), uuid.UUID(bob.member_id), int(time.time()) + 300),
                        link_secret(system))
    assert gateway.get(f"/api/v1/documents/downloads/{stolen}").status_code == 404
    expired = links.sign(links.LinkGrant(uuid.UUID(statement["id"]), uuid.UUID(alice.member_id), int(time.time()) - 1),
                         link_secret(system))
    gone = gateway.get(f"/api/v1/documents/downloads/{expired}")
    assert gone.status_code == 410 and gone.json()["code"] == "link_expired"


def test_a_rejected_claim_tells_the_reason(system, gateway, alice):
    answer = upload(gateway, alice, [("devis.png", _png(), "image/png")], care_type="optics")
    assert answer.status_code == 202, answer.text
    submission_id = answer.json()["submission_id"]
    wait_status(gateway, alice, submission_id, SUBMITTED)
    publish(system, ClaimRejected(claim_id=uuid.uuid4(), contract_number=alice.member.contract_number,
                                  holder_member_id=uuid.UUID(alice.member_id), beneficiary_member_id=uuid.UUID(alice.member_id),
                                  source="upload", external_ref=submission_id, submission_id=uuid.UUID(submission_id),
                                  reason_code="renewal_period", reason="une paire de lunettes par période de deux ans",
                                  rejected_at=datetime.now(UTC)), key=alice.member_id)
    rejected = wait_status(gateway, alice, submission_id, "rejected")
    assert rejected["status_message"] == "Votre demande a été refusée : une paire de lunettes par période de deux ans"


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_eicar_inside_a_well_formed_pdf_is_quarantined_never_served_nor_passed_on(system, gateway, alice):
    infected = pdf_bytes("Facture", extra=EICAR)
    answer = upload(gateway, alice, [("facture-dentiste.pdf", infected, "application/pdf")], care_type="dental")
    assert answer.status_code == 202, answer.text
    submission_id = answer.json()["submission_id"]
    document_id = answer.json()["files"][0]["document_id"]
    quarantined = wait_status(gateway, alice, submission_id, "quarantined")
    assert "« facture-dentiste.pdf »" in quarantined["status_message"]
    assert "antivirus" in quarantined["status_message"] and "quarantaine" in quarantined["status_message"]
    assert quarantined["files"][0]["scan_status"] == "infected"
    refused = gateway.post(f"/api/v1/documents/{document_id}/download-links", headers=alice.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "quarantined"
    [row] = documents_db(system, "SELECT storage_key, scan_detail FROM documents WHERE id = $1", uuid.UUID(document_id))
    assert row["storage_key"].startswith("quarantine/") and "EICAR" in row["scan_detail"]
    assert events(system, DOCUMENTS_DOCUMENTS, "documents.InvoiceSubmitted",
                  lambda p: p["submission_id"] == submission_id, expected=1, timeout=3) == []


def test_an_exe_renamed_pdf_is_a_415_naming_the_file(gateway, alice):
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
    answer = upload(gateway, alice, [("facture.pdf", pdf_bytes("ok"), "application/pdf"),
                                     ("ordonnance.pdf", exe, "application/pdf")])
    assert answer.status_code == 415, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "unsupported_file_type" and "« ordonnance.pdf »" in problem["detail"]
    assert "facture.pdf" not in problem["detail"]


def test_six_files_or_sixteen_megabytes_are_refused_naming_the_limit(gateway, alice):
    six = [(f"f{i}.pdf", pdf_bytes(f"six {i}"), "application/pdf") for i in range(6)]
    answer = upload(gateway, alice, six)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "too_many_files" and "5 fichiers" in answer.json()["detail"]
    big = [(f"scan{i}.pdf", b"%PDF-1.4\n" + bytes([65 + i]) * 4_000_000, "application/pdf") for i in range(4)]
    answer = upload(gateway, alice, big)  # 16 MB in four files of 4 MB
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "request_too_large" and "15 Mo" in answer.json()["detail"]
    one = [("enorme.pdf", b"%PDF-1.4\n" + b"x" * 5_500_000, "application/pdf")]
    answer = upload(gateway, alice, one)
    assert answer.status_code == 413 and answer.json()["code"] == "file_too_large"
    assert "« enorme.pdf »" in answer.json()["detail"] and "5 Mo" in answer.json()["detail"]


def test_the_same_file_twice_is_the_same_document_and_no_second_claim(system, gateway, alice):
    data = pdf_bytes(f"dedupe {uuid.uuid4()}")
    first = upload(gateway, alice, [("a.pdf", data, "application/pdf")])
    assert first.status_code == 202
    again = upload(gateway, alice, [("renamed.pdf", data, "application/pdf")])
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["duplicate"] is True and "déjà été envoyés" in body["status_message"]
    assert body["submission_id"] == first.json()["submission_id"]
    assert body["files"][0]["document_id"] == first.json()["files"][0]["document_id"]
    submission_id = first.json()["submission_id"]
    wait_status(gateway, alice, submission_id, SUBMITTED)
    assert len(events(system, DOCUMENTS_DOCUMENTS, "documents.InvoiceSubmitted",
                      lambda p: first.json()["files"][0]["document_id"] in p["document_ids"], settle=2.0)) == 1


def test_with_clamd_stopped_uploads_are_accepted_and_scanned_once_it_is_back(system, gateway, alice):
    system.stop_clamav()
    try:
        answer = upload(gateway, alice, [("pendant-panne.pdf", pdf_bytes(f"panne {uuid.uuid4()}"), "application/pdf")])
        assert answer.status_code == 202, answer.text
        submission_id = answer.json()["submission_id"]
        document_id = answer.json()["files"][0]["document_id"]
        time.sleep(2.5)  # several scanner passes meet a closed port
        waiting = submission(gateway, alice, submission_id)
        assert waiting["status"] == "scanning" and waiting["files"][0]["scan_status"] == "pending"
        refused = gateway.post(f"/api/v1/documents/{document_id}/download-links", headers=alice.headers)
        assert refused.status_code == 409 and refused.json()["code"] == "scan_pending"
    finally:
        system.start_clamav()
    wait_status(gateway, alice, submission_id, SUBMITTED, timeout=60)
    assert len(events(system, DOCUMENTS_DOCUMENTS, "documents.InvoiceSubmitted",
                      lambda p: p["submission_id"] == submission_id, settle=2.0)) == 1


def test_a_beneficiary_outside_the_contract_or_a_bad_form_is_a_422_per_field(gateway, alice, bob):
    answer = upload(gateway, alice, [("x.pdf", pdf_bytes("x"), "application/pdf")], beneficiary=bob.member.membership_number,
                    care_type="massage", care_date="2030-01-01", amount_charged="soixante")
    assert answer.status_code == 422
    fields = {e["field"]: e["code"] for e in answer.json()["errors"]}
    assert fields == {"beneficiary": "unknown_beneficiary", "care_type": "invalid_choice", "care_date": "in_future",
                      "amount_charged": "invalid_amount"}


def test_statements_rendering_when_documents_is_killed_are_all_downloadable_after_its_restart_and_announced_once(
        system, gateway, alice):
    claim_ids = [uuid.uuid4() for _ in range(16)]
    [*_, last] = publish_events(system, [(settled_event(alice, None, c), alice.member_id) for c in claim_ids], producer="claims")
    # The last one delivered again (same event) and its claim settled again (a new event): no second statement.
    again = settled_event(alice, None, claim_ids[-1])
    publish_events(system, [last, (again, alice.member_id)], producer="claims")

    def recorded():
        rows = documents_db(system, "SELECT render_status FROM documents WHERE claim_id = ANY($1::uuid[])", claim_ids)
        return rows if len(rows) == len(claim_ids) else None

    # The consumer records the sixteen at once; the renderer goes through them one worker render
    # at a time, so documents is killed (with its PDF workers) while most are still to render.
    rows = wait_until(recorded, what="the statements recorded")
    kill_service(system, "documents")
    assert any(r["render_status"] == "pending" for r in rows)
    restart_services(system)

    wait_until(lambda: not documents_db(system, "SELECT 1 FROM documents WHERE claim_id = ANY($1::uuid[])"
                                        " AND render_status <> 'rendered'", claim_ids),
               timeout=120, what="every statement rendered after the restart")
    ids = [str(r["id"]) for r in documents_db(system, "SELECT id FROM documents WHERE claim_id = ANY($1::uuid[])", claim_ids)]
    assert len(ids) == len(claim_ids)
    for document_id in ids:
        pdf = download(gateway, alice, document_id)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), document_id
    announced = events(system, DOCUMENTS_DOCUMENTS, "documents.DocumentIssued", lambda p: p["document_id"] in ids,
                       expected=len(ids), settle=3.0, timeout=60)
    assert sorted(p["document_id"] for p in announced) == sorted(ids)
