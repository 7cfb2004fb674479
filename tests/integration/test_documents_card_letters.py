"""The tiers-payant card (JSON, PDF, Data Matrix PNG decoded back) reissued when a child joins
the contract through `make import-members`, recorded by the consumer and rendered afterwards
(or when the member asks for it first); letters routed by the paperless choice, with the paper
ones in the print batch."""

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


def test_a_family_imported_at_once_is_recorded_as_one_pending_card_rendered_when_the_member_asks(
        system, gateway, mailbox, tmp_path):
    stamp = uuid.uuid4().int
    # Other contracts in the same file, sorted before the family's: the renderer takes the oldest
    # first, so the family's card is still to render once the consumer has recorded everyone.
    ahead = [DemoMember(f"6{(stamp + i) % 10**8:08d}", f"CA{(stamp + i) % 10**8:08d}", "Garnier", "Hugo", date(1975, 1, 1 + i))
             for i in range(8)]
    number = f"6{(stamp + 99) % 10**8:08d}"
    contract = f"CZ{number}"
    holder = DemoMember(number, contract, "Lambert", "Sophie", date(1982, 9, 12))
    family = [holder] + [DemoMember(f"6{(stamp + 100 + i) % 10**8:08d}", contract, "Lambert", first, born)
                         for i, (first, born) in enumerate((("Jules", date(2011, 4, 1)), ("Nina", date(2014, 6, 2)),
                                                            ("Tom", date(2018, 8, 3))))]
    import_members(system, tmp_path, ahead + family)

    def recorded():
        rows = documents_db(system, "SELECT c.version, c.pdf_document_id, jsonb_array_length(c.content->'beneficiaries') AS n"
                            " FROM cards c WHERE c.contract_number = $1", contract)
        return rows if rows and rows[-1]["n"] == 4 else None

    [card] = wait_until(recorded, what="the family's card recorded with its four members")
    # Four MemberEnrolled, one card: the consumer recorded it and did not render it (still
    # pending, no file). Held back from the renderer here, so the member's request renders it.
    held = documents_db(system, "UPDATE documents SET render_after = now() + interval '1 hour'"
                        " WHERE id = $1 AND render_status = 'pending' AND storage_key IS NULL RETURNING id",
                        card["pdf_document_id"])
    assert card["version"] == 1 and len(held) == 1

    session = open_session(system, gateway, mailbox, holder)
    answer = gateway.get("/api/v1/documents/card", headers=session.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert [b["name"] for b in answer.json()["beneficiaries"]] == ["Sophie Lambert", "Jules Lambert", "Nina Lambert", "Tom Lambert"]
    assert "|BEN:4|" in answer.json()["datamatrix_payload"]
    pdf = gateway.get(answer.json()["pdf_url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "Tom Lambert" in pdf_text(pdf.content)
    assert gateway.get(answer.json()["png_url"]).status_code == 200
    [row] = documents_db(system, "SELECT render_status, render_after > now() AS held, size_bytes, sha256 FROM documents"
                         " WHERE id = $1", card["pdf_document_id"])
    assert row["render_status"] == "rendered" and row["held"] and row["size_bytes"] == len(pdf.content)
    # The contracts ahead are rendered by the background renderer, once each.
    done = wait_until(lambda: (rows := documents_db(
        system, "SELECT d.render_status, c.version FROM cards c JOIN documents d ON d.id = c.pdf_document_id"
        " WHERE c.contract_number = ANY($1::text[])", [m.contract_number for m in ahead]))
        and all(r["render_status"] == "rendered" for r in rows) and rows, timeout=120, what="the other cards rendered")
    assert len(done) == len(ahead) and {r["version"] for r in done} == {1}


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
