"""The tiers-payant card (JSON, PDF, Data Matrix PNG decoded back) reissued when a child joins
the contract through `make import-members`; letters routed by the paperless choice, with the
paper ones in the print batch."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from datetime import date

import pytest

from shared.contracts.topics import DOCUMENTS_DOCUMENTS
from tests.integration.conftest import DemoMember
from tests.integration.documents_support import (
    agent_token,
    documents_db,
    events,
    open_session,
    pdf_text,
    pdf_xmp,
    signing_key_file,
    wait_until,
)
from tests.integration.system import ROOT


def import_members(system, tmp_path, rows: list[DemoMember]) -> None:
    path = tmp_path / f"members-{uuid.uuid4().hex}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["membership_number", "contract_number", "last_name", "first_name", "birth_date"])
        for m in rows:
            writer.writerow([m.membership_number, m.contract_number, m.last_name, m.first_name, m.birth_date])
    env = {**os.environ, "IDENTITY_DATABASE_URL": system.db_url("identity")}
    subprocess.run(["make", "-s", "import-members", f"FILE={path}"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=60)


def test_the_card_reflects_a_newly_added_child_and_its_data_matrix_decodes_to_the_payload(system, gateway, mailbox, tmp_path):
    from PIL import Image
    from pylibdmtx.pylibdmtx import decode

    number = f"8{uuid.uuid4().int % 10**8:08d}"
    parent = DemoMember(number, f"C{number}", "Moreau", "Claire", date(1984, 5, 6))
    import_members(system, tmp_path, [parent])
    session = open_session(system, gateway, mailbox, parent)
    first = wait_until(lambda: (r := gateway.get("/api/v1/documents/card", headers=session.headers)).status_code == 200
                       and r.json(), what="a card")
    assert first["membership_number"] == number and first["responsable"] is True
    assert first["valid_from"] == f"{date.today().year}-01-01" and first["valid_to"] == f"{date.today().year}-12-31"
    assert [b["name"] for b in first["beneficiaries"]] == ["Claire Moreau"]
    assert {d["code"] for d in first["domains"]} >= {"PHAR", "DENT", "OPTI", "HOSP"}

    child_number = f"8{uuid.uuid4().int % 10**8:08d}"
    import_members(system, tmp_path, [parent, DemoMember(child_number, parent.contract_number, "Moreau", "Léo", date(2019, 2, 3))])
    card = wait_until(lambda: (r := gateway.get("/api/v1/documents/card", headers=session.headers).json())["version"] == 2 and r,
                      what="the card reissued")
    assert [(b["name"], b["birth_date"]) for b in card["beneficiaries"]] == [("Claire Moreau", "1984-05-06"), ("Léo Moreau", "2019-02-03")]
    assert card["datamatrix_payload"].startswith(f"ESPACE-TP1|AMC:{card['amc_number']}|CONV:SP|CSR:")
    assert "|BEN:2|" in card["datamatrix_payload"] and f"|ADH:{number}|" in card["datamatrix_payload"]
    replaced = documents_db(system, "SELECT version, replaced_at FROM cards WHERE contract_number = $1 ORDER BY version",
                            parent.contract_number)
    assert [r["version"] for r in replaced] == [1, 2] and replaced[0]["replaced_at"] is not None and replaced[1]["replaced_at"] is None

    png = gateway.get(card["png_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    [decoded] = decode(Image.open(io.BytesIO(png.content)))
    assert decoded.data.decode() == card["datamatrix_payload"]
    pdf = gateway.get(card["pdf_url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Attestation de tiers payant", "Léo Moreau", "03/02/2019", number, "PHAR", "N° AMC"):
        assert expected in text, expected
    assert b'pdfaid:part="3"' in pdf_xmp(pdf.content)
    # The replaced card's links are not handed out any more; the old PNG still shows as replaced.
    assert first["png_url"] != card["png_url"]


def _contribution_call(number: str) -> dict:
    return {"type": "contribution_call", "membership_number": number, "period_start": "2026-01-01",
            "period_end": "2026-03-31", "amount_cents": 18600,
            "schedule": [{"due_date": f"2026-0{m}-05", "amount_cents": 6200} for m in (1, 2, 3)],
            "mandate_reference": f"RUM-{number}"}


def test_a_contribution_call_goes_online_for_a_paperless_member_and_to_the_print_batch_for_a_paper_one(
        system, gateway, mailbox, registry, tmp_path):
    online, paper = (open_session(system, gateway, mailbox, registry.take()) for _ in range(2))
    assert gateway.put("/api/v1/identity/me/preferences", headers=paper.headers,
                       json={"paperless": False, "reimbursement_alerts": True}).status_code == 200
    assert gateway.patch("/api/v1/identity/me/profile", headers=paper.headers, json={"postal_address": {
        "line1": "8 avenue Jean Jaurès", "postal_code": "13001", "city": "Marseille", "country": "FR"}}).status_code == 200
    wait_until(lambda: documents_db(system, "SELECT 1 FROM members WHERE member_id = $1 AND NOT paperless AND postal_address IS NOT NULL",
                                    uuid.UUID(paper.member_id)), what="documents knows the paper choice and address")
    agent = {"Authorization": f"Bearer {agent_token(signing_key_file(system))}"}
    # A member's token cannot reach the back office, nor an agent's token a member route.
    assert gateway.post("/api/v1/documents/backoffice/letters", headers=online.headers,
                        json=_contribution_call(online.member.membership_number)).status_code == 401
    assert gateway.get("/api/v1/documents", headers=agent).status_code == 401
    bad = _contribution_call(online.member.membership_number) | {"amount_cents": 100}
    refused = gateway.post("/api/v1/documents/backoffice/letters", headers=agent, json=bad)
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "sum_mismatch"

    issued = {}
    for who in (online, paper):
        answer = gateway.post("/api/v1/documents/backoffice/letters", headers=agent, json=_contribution_call(who.member.membership_number))
        assert answer.status_code == 201, answer.text
        issued[who.member_id] = answer.json()
    assert issued[online.member_id]["delivery"] == "online" and issued[paper.member_id]["delivery"] == "post"
    for who, delivery in ((online, "online"), (paper, "post")):
        [event] = events(system, DOCUMENTS_DOCUMENTS, "documents.DocumentIssued",
                         lambda p, d=issued[who.member_id]["id"]: p["document_id"] == d)
        assert event["delivery"] == delivery and event["document_type"] == "contribution_call"
    assert len(documents_db(system, "SELECT 1 FROM agent_actions WHERE action = 'letter_issued' AND target_id = ANY($1::uuid[])",
                            [uuid.UUID(d["id"]) for d in issued.values()])) == 2

    link = gateway.post(f"/api/v1/documents/{issued[online.member_id]['id']}/download-links", headers=online.headers).json()
    text = pdf_text(gateway.get(link["url"]).content)
    for expected in ("Appel de cotisation", "186,00", "62,00", "05/02/2026", "FR12ZZZ123456", f"RUM-{online.member.membership_number}"):
        assert expected in text, expected

    out = tmp_path / "print"
    env = {**os.environ, "DOCUMENTS_DATABASE_URL": system.db_url("documents"),
           "DOCUMENTS_STORAGE_DIR": str(system.env["ESPACE_VAR"]) + "/documents"}
    result = subprocess.run([sys.executable, "-m", "documents.entrypoints.cli", "print-batch", "--out", str(out)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [folder] = out.iterdir()
    [manifest] = folder.glob("*.csv")
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    mine = [r for r in rows if r["document_id"] == issued[paper.member_id]["id"]]
    assert len(mine) == 1 and "13001 Marseille" in mine[0]["address"] and mine[0]["pages"] == "1"
    assert not [r for r in rows if r["document_id"] == issued[online.member_id]["id"]]
    [batch_pdf] = folder.glob("*.pdf")
    assert "8 avenue Jean Jaurès" in pdf_text(batch_pdf.read_bytes())
    [row] = documents_db(system, "SELECT print_status FROM documents WHERE id = $1", uuid.UUID(issued[paper.member_id]["id"]))
    assert row["print_status"] == "sent"
    again = subprocess.run([sys.executable, "-m", "documents.entrypoints.cli", "print-batch", "--out", str(tmp_path / "again")],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert issued[paper.member_id]["id"] not in again.stdout and not (tmp_path / "again").exists() or \
        not any(issued[paper.member_id]["id"] in p.read_text() for p in (tmp_path / "again").rglob("*.csv"))
