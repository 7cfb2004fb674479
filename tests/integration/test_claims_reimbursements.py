"""Reimbursements end to end, through the gateway on the real system: the Sécu (NOEMIE) feed
valued under ESSENTIEL and CONFORT, the same file again, who sees which lines, paper claims an
agent values or rejects, a duplicate across channels, member vs agent tokens, and a dispute
reaching the back office; and the member's reimbursements page as one trace from the gateway
through web and the gateway again to claims."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, date, datetime

import httpx
import pytest

from shared.contracts.documents import InvoiceSubmitted
from tests.integration.claims_helpers import (
    agent_headers, claims_events, claims_url, db_query, enrol_family, import_noemie, log_in, publish, queued_claim,
    write_noemie,
)
from tests.integration.conftest import PASSWORD
from tests.integration.test_platform_observability import _chain, _spans

Y = date.today().year
GP_PRACTITIONER = "10003456789"


def d(month: int, day: int) -> str:
    return date(Y, month, day).isoformat()


@pytest.fixture(scope="module")
def world(system, gateway, mailbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims")
    confort = enrol_family(system, tmp, "CONFORT", [
        ("Camille", "holder", date(1985, 4, 12), "Martin-Claims"),
        ("Louis", "child", date(2012, 9, 3), "Martin-Claims"),
    ])
    essentiel = enrol_family(system, tmp, "ESSENTIEL", [("Hélène", "holder", date(1972, 11, 30), "Lefèvre-Claims")],
                             coverage_start=date(Y, 3, 1))
    holder, child = confort
    [helene] = essentiel
    heads = {
        "holder": log_in(gateway, mailbox, holder.member),
        "child": log_in(gateway, mailbox, child.member),
        "helene": log_in(gateway, mailbox, helene.member),
    }
    tag = uuid.uuid4().hex[:8]
    rows = [
        # CONFORT: a GP (secteur 2, OPTAM) charging 50 €: min(50 − 21, 200 % × 30 − 21) = 29 €.
        dict(decompte_id=f"A{tag}", line_number=1, membership_number=holder.member.membership_number, care_date=d(4, 2),
             act_code="G", act_label="Consultation médecin généraliste", amount_charged="50.00", base="30.00",
             secu_rate=70, secu_paid="19.00", participation="2.00", practitioner_id=GP_PRACTITIONER,
             practitioner_sector=2, optam="true", payee="member"),
        # CONFORT: a non-OPTAM specialist, base 23 €: min(80 − 16,10, 200 % × 23 − 16,10) = 29,90 €.
        dict(decompte_id=f"A{tag}", line_number=2, membership_number=holder.member.membership_number, care_date=d(4, 2),
             act_code="CS", act_label="Consultation spécialiste", amount_charged="80.00", base="23.00", secu_rate=70,
             secu_paid="14.10", participation="2.00", practitioner_id="10009999999", practitioner_sector=2, optam="false"),
        # The child's medicine at 65 % (shown to the holder, not the other way round).
        dict(decompte_id=f"B{tag}", line_number=1, membership_number=child.member.membership_number, care_date=d(5, 6),
             act_code="PH7", act_label="Médicaments", amount_charged="12.00", base="12.00", secu_rate=65,
             secu_paid="6.80", participation="1.00", payee="practitioner"),
        # ESSENTIEL: the same GP visit: 100 % BR only, 9 €.
        dict(decompte_id=f"C{tag}", line_number=1, membership_number=helene.member.membership_number, care_date=d(4, 2),
             act_code="G", act_label="Consultation médecin généraliste", amount_charged="50.00", base="30.00",
             secu_rate=70, secu_paid="19.00", participation="2.00", practitioner_id=GP_PRACTITIONER,
             practitioner_sector=2, optam="true"),
        # ESSENTIEL: a medicine at 30 %: 10 − 3 = 7 €, the 1 € franchise stays with the member.
        dict(decompte_id=f"C{tag}", line_number=2, membership_number=helene.member.membership_number, care_date=d(4, 2),
             act_code="PH4", act_label="Médicaments", amount_charged="10.00", base="10.00", secu_rate=30,
             secu_paid="2.00", participation="1.00"),
        # ESSENTIEL: class-B glasses, frame 150 € + lenses 240 €: the 100 € ceiling is reached.
        dict(decompte_id=f"D{tag}", line_number=1, membership_number=helene.member.membership_number, care_date=d(5, 10),
             act_code="OPT_B_MONTURE", act_label="Monture", amount_charged="150.00", base="0.05", secu_rate=60,
             secu_paid="0.03", participation="0.00", practitioner_id="20001112223"),
        dict(decompte_id=f"D{tag}", line_number=2, membership_number=helene.member.membership_number, care_date=d(5, 10),
             act_code="OPT_B_VERRE", act_label="Verres", quantity=2, amount_charged="240.00", base="0.10",
             secu_rate=60, secu_paid="0.06", participation="0.00", practitioner_id="20001112223"),
        # A second pair within 24 months: refused.
        dict(decompte_id=f"E{tag}", line_number=1, membership_number=helene.member.membership_number, care_date=d(9, 15),
             act_code="OPT_B_MONTURE", act_label="Monture", amount_charged="90.00", base="0.05", secu_rate=60,
             secu_paid="0.03", participation="0.00", practitioner_id="20001112223"),
        # Before Hélène's coverage starts (1 March): refused, and the décompte with it.
        dict(decompte_id=f"F{tag}", line_number=1, membership_number=helene.member.membership_number, care_date=d(2, 10),
             act_code="G", act_label="Consultation médecin généraliste", amount_charged="30.00", base="30.00",
             secu_rate=70, secu_paid="19.00", participation="2.00", practitioner_id=GP_PRACTITIONER, practitioner_sector=1),
        # A malformed row: the rest still goes in.
        dict(decompte_id=f"G{tag}", line_number=1, membership_number=helene.member.membership_number, care_date=d(6, 1),
             act_code="G", act_label="Consultation", amount_charged="30,00", base="30.00", secu_rate=70,
             secu_paid="19.00", participation="2.00"),
    ]
    path = write_noemie(tmp / f"noemie-{tag}.csv", rows)
    first = import_noemie(system, path)
    return dict(system=system, tmp=tmp, holder=holder, child=child, helene=helene, heads=heads, tag=tag, path=path,
                first=first)


def lines(gateway, headers, **params) -> dict:
    response = gateway.get("/api/v1/claims/reimbursements", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_act(page: dict) -> dict[tuple[str, str], dict]:
    return {(item["act_code"], item["care_date"]): item for item in page["items"]}


def test_the_secu_feed_is_valued_per_formula_and_plan(gateway, world):
    assert "settled: 6, rejected: 3, duplicates: 0, malformed: 1" in world["first"].stdout, world["first"].stdout
    assert "ligne 11" in world["first"].stderr and "amount_charged" in world["first"].stderr

    helene = by_act(lines(gateway, world["heads"]["helene"]))
    assert helene[("G", d(4, 2))]["mutuelle_paid_cents"] == 900
    assert helene[("G", d(4, 2))]["out_of_pocket_cents"] == 5000 - 1900 - 900
    pharmacy = helene[("PH4", d(4, 2))]
    assert (pharmacy["mutuelle_paid_cents"], pharmacy["participation_cents"], pharmacy["out_of_pocket_cents"]) == (700, 100, 100)
    frame, lenses = helene[("OPT_B_MONTURE", d(5, 10))], helene[("OPT_B_VERRE", d(5, 10))]
    assert frame["mutuelle_paid_cents"] == 10000 and frame["status"] == "paid"
    assert (lenses["status"], lenses["rejection_reason"], lenses["mutuelle_paid_cents"]) == ("rejected", "ceiling_reached", 0)
    second = helene[("OPT_B_MONTURE", d(9, 15))]
    assert (second["status"], second["rejection_reason"]) == ("rejected", "renewal_period")
    uncovered = helene[("G", d(2, 10))]
    assert (uncovered["status"], uncovered["rejection_reason"]) == ("rejected", "not_covered_on_date")

    holder = by_act(lines(gateway, world["heads"]["holder"]))
    gp = holder[("G", d(4, 2))]
    assert (gp["mutuelle_paid_cents"], gp["out_of_pocket_cents"]) == (2900, 200)
    assert holder[("CS", d(4, 2))]["mutuelle_paid_cents"] == 4600 - 1610

    detail = gateway.get(f"/api/v1/claims/reimbursements/{gp['id']}", headers=world["heads"]["holder"])
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["guarantee"]["words"].startswith("200 % de la base de remboursement")
    assert [h["status"] for h in body["claim"]["history"]] == ["received", "settled"]
    assert body["claim"]["reference"] == f"A{world['tag']}"

    # One ClaimReceived and one outcome per décompte, on Kafka; the décomptes whose every line was
    # rejected (the second pair, the uncovered date) as ClaimRejected.
    refs = {f"{x}{world['tag']}" for x in "ABCDEF"}
    events = claims_events(world["system"], lambda e: e["payload"].get("external_ref") in refs, expected=12)
    kinds = sorted((e["payload"]["external_ref"][0], e["event_type"].split(".")[1]) for e in events)
    assert kinds == sorted([(x, "ClaimReceived") for x in "ABCDEF"] + [(x, "ClaimSettled") for x in "ABCD"] + [(x, "ClaimRejected") for x in "EF"])
    settled_d = next(e for e in events if e["payload"]["external_ref"][0] == "D" and e["event_type"].endswith("ClaimSettled"))
    assert settled_d["payload"]["status"] == "partially_rejected"
    assert settled_d["payload"]["total_mutuelle_paid_cents"] == 10000


def test_the_same_file_again_adds_nothing(gateway, world):
    before = lines(gateway, world["heads"]["helene"])["totals"]
    again = import_noemie(world["system"], world["path"])
    assert "settled: 0, rejected: 0, duplicates: 9, malformed: 1" in again.stdout, again.stdout
    assert lines(gateway, world["heads"]["helene"])["totals"] == before


def test_the_holder_sees_the_childs_lines_and_the_child_only_their_own(gateway, world):
    holder_page = lines(gateway, world["heads"]["holder"])
    names = {item["beneficiary"]["first_name"] for item in holder_page["items"]}
    assert names == {"Camille", "Louis"}
    assert {b["first_name"] for b in gateway.get("/api/v1/claims/beneficiaries", headers=world["heads"]["holder"]).json()["items"]} == {"Camille", "Louis"}

    child_page = lines(gateway, world["heads"]["child"])
    assert [item["beneficiary"]["first_name"] for item in child_page["items"]] == ["Louis"]
    holders_line = next(i for i in holder_page["items"] if i["beneficiary"]["first_name"] == "Camille")
    assert gateway.get(f"/api/v1/claims/reimbursements/{holders_line['id']}", headers=world["heads"]["child"]).status_code == 404
    assert gateway.get(f"/api/v1/claims/reimbursements/{holders_line['id']}", headers=world["heads"]["helene"]).status_code == 404
    assert gateway.get(f"/api/v1/claims/reimbursements/{uuid.uuid4()}", headers=world["heads"]["holder"]).status_code == 404
    assert [b["first_name"] for b in gateway.get("/api/v1/claims/beneficiaries", headers=world["heads"]["child"]).json()["items"]] == ["Louis"]

    only_child = lines(gateway, world["heads"]["holder"], beneficiary=str(world["child"].member_id))
    assert [i["beneficiary"]["first_name"] for i in only_child["items"]] == ["Louis"]
    assert only_child["totals"]["mutuelle_paid_cents"] == 1200 - 780  # 100 % BR − 65 % gross
    # The child may not ask for the holder's lines, nor anyone for a stranger's: a 422, no line.
    for heads, other in ((world["heads"]["child"], world["holder"]), (world["heads"]["holder"], world["helene"])):
        refused = gateway.get("/api/v1/claims/reimbursements", headers=heads, params={"beneficiary": str(other.member_id)})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == "beneficiary" and "bénéficiaire" in refused.json()["errors"][0]["message"]


def test_the_reimbursements_page_is_one_trace_from_the_gateway_through_web_to_claims(system, world):
    request_id = f"req-{uuid.uuid4().hex}"
    with httpx.Client(base_url=system.gateway_url, timeout=30) as browser:
        form = browser.get("/connexion")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
        logged = browser.post("/connexion", data={"identifier": world["holder"].member.membership_number,
                                                  "password": PASSWORD, "csrf": csrf})
        assert logged.status_code == 303 and logged.headers["location"] == "/espace"
        page = browser.get("/remboursements", headers={"X-Request-ID": request_id})
        # The filter form as a browser submits it: each option's value is one claims accepts.
        options = dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>',
                                  page.text[page.text.index('name="beneficiary"'):page.text.index('name="category"')]))
        child = next(value for value, name in options.items() if name.startswith("Louis"))
        only_child = browser.get("/remboursements", params={"beneficiary": child})
        category_select = page.text[page.text.index('name="category"'):]
        categories = re.findall(r'<option value="([^"]+)"', category_select[:category_select.index("</select>")])
        by_category = {c: browser.get("/remboursements", params={"category": c}) for c in categories}
    assert page.status_code == 200 and page.headers["x-correlation-id"] == request_id
    assert only_child.status_code == 200 and "Louis" in only_child.text and "<td>Camille</td>" not in only_child.text
    assert "pharmacie" in categories and all(r.status_code == 200 and 'role="alert"' not in r.text for r in by_category.values())
    assert "<td>Camille</td>" not in by_category["pharmacie"].text and "<td>Camille</td>" in by_category["soins_courants"].text
    # The table's cells as claims answers them: the GP visit of 50 €, in French, for Camille.
    row = re.search(r"<tr>\s*<td>(\d\d/04/\d{4})</td>\s*<td>Camille</td>\s*<th scope=\"row\"><a href=\"/remboursements/"
                    r"[0-9a-f-]+\">Consultation médecin généraliste</a></th>\s*<td>50,00\u00a0€</td>", page.text)
    assert row is not None and row[1] == f"02/04/{Y}", page.text[:3000]

    expected = [
        ("gateway", "GET /remboursements"),
        ("web", "GET /remboursements"),
        ("gateway", "GET /api/v1/claims/reimbursements"),
        ("claims", "GET /api/v1/claims/reimbursements"),
    ]
    deadline = time.monotonic() + 20  # spans are written in batches, every few seconds
    while (found := _chain(_spans(system), request_id, expected)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == expected


def test_filters_paging_totals_and_french_problems(gateway, world):
    heads = world["heads"]["helene"]
    everything = lines(gateway, heads)
    assert everything["totals"]["lines"] == 6
    assert everything["totals"]["mutuelle_paid_cents"] == 900 + 700 + 10000
    seen, cursor = [], None
    while True:
        page = lines(gateway, heads, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i["id"] for i in everything["items"]]
    dates = [i["care_date"] for i in everything["items"]]
    assert dates == sorted(dates, reverse=True)
    optics = lines(gateway, heads, category="optique", **{"from": d(5, 1), "to": d(12, 31)})
    assert {i["act_code"] for i in optics["items"]} == {"OPT_B_MONTURE", "OPT_B_VERRE"}
    assert optics["totals"]["mutuelle_paid_cents"] == 10000

    bad = gateway.get("/api/v1/claims/reimbursements", headers=heads, params={"category": "spa"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "category" and "Catégorie" in bad.json()["errors"][0]["message"]
    bad_date = gateway.get("/api/v1/claims/reimbursements", headers=heads, params={"from": "2026-13-01"})
    assert bad_date.status_code == 422 and bad_date.json()["errors"][0]["message"].startswith("La date")
    assert gateway.get("/api/v1/claims/reimbursements", headers=heads, params={"cursor": "nope"}).status_code == 422

    guarantees = gateway.get("/api/v1/claims/guarantees", headers=heads).json()
    assert guarantees["plan_code"] == "ESSENTIEL"
    [optique_b] = [c for c in guarantees["shared_ceilings"] if c["name"] == "OPTIQUE_B"]
    assert optique_b["consumption"][0]["remaining_cents"] == 0
    confort = gateway.get("/api/v1/claims/guarantees", headers=world["heads"]["holder"]).json()
    soins = next(c for c in confort["categories"] if c["category"] == "soins_courants")
    assert soins["guarantees"][0]["words"].startswith("200 % de la base de remboursement")
    assert len(next(c for c in confort["categories"] if c["category"] == "medecines_douces")["guarantees"][0]["consumption"]) == 2


def _submit_invoice(system, person, care_type: str, care_day: str, amount: int) -> uuid.UUID:
    submission = uuid.uuid4()
    publish(system, [(InvoiceSubmitted(
        submission_id=submission, member_id=person.member_id, beneficiary_member_id=person.member_id,
        beneficiary_membership_number=person.member.membership_number, contract_number=person.member.contract_number,
        care_type=care_type, care_date=date.fromisoformat(care_day), amount_charged_cents=amount,
        document_ids=[uuid.uuid4()], submitted_at=datetime.now(UTC),
    ), str(person.member_id))])
    return submission


def test_a_paper_claim_is_valued_by_an_agent_and_another_rejected(gateway, world, backoffice, agent):
    holder = world["holder"]
    submission = _submit_invoice(world["system"], holder, "osteopathy", d(6, 20), 6000)
    claim = queued_claim(backoffice, submission)
    assert claim["status"] == "needs_review" and claim["care_type"] == "osteopathy"
    valued = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim['id']}/valuation", json={"lines": [
        {"act_code": "OSTEO", "act_label": "Séance d'ostéopathie", "amount_charged_cents": 6000, "practitioner_id": "750012345"},
    ]})
    assert valued.status_code == 200, valued.text
    assert valued.json()["status"] == "settled"
    assert [h["status"] for h in valued.json()["history"]] == ["received", "needs_review", "settled"]
    assert valued.json()["history"][-1]["actor"] == f"agent:{agent.id}"
    line = valued.json()["lines"][0]
    assert line["mutuelle_paid_cents"] == 4000 and line["out_of_pocket_cents"] == 2000
    again = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim['id']}/valuation", json={"lines": [
        {"act_code": "OSTEO", "act_label": "Séance", "amount_charged_cents": 6000}]})
    assert again.status_code == 409

    mine = gateway.get(f"/api/v1/claims/reimbursements/{line['id']}", headers=world["heads"]["holder"]).json()
    assert mine["guarantee"]["words"] == "40 € par séance, 4 séances par année civile"
    assert mine["claim"]["source"] == "upload"

    other = _submit_invoice(world["system"], holder, "other", d(6, 21), 2500)
    claim2 = queued_claim(backoffice, other)
    bad = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim2['id']}/rejection", json={"reason_code": "because"})
    assert bad.status_code == 422
    rejected = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim2['id']}/rejection", json={"reason_code": "missing_document"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    [event] = claims_events(world["system"], lambda e: e["event_type"] == "claims.ClaimRejected" and e["payload"].get("submission_id") == str(other), expected=1)
    assert event["payload"]["reason_code"] == "missing_document"
    audit = db_query(world["system"], "claims", "SELECT agent_id, action FROM agent_audit"
                     " WHERE claim_id = ANY($1::uuid[]) AND action <> 'view_claim' ORDER BY id",
                     [uuid.UUID(claim["id"]), uuid.UUID(claim2["id"])])
    assert [(str(a["agent_id"]), a["action"]) for a in audit] == [(agent.id, "value_claim"), (agent.id, "reject_claim")]


def test_the_same_care_by_both_channels_is_paid_once(gateway, world, backoffice):
    holder = world["holder"]
    gp = by_act(lines(gateway, world["heads"]["holder"]))[("G", d(4, 2))]
    submission = _submit_invoice(world["system"], holder, "other", d(4, 2), 5000)
    claim = queued_claim(backoffice, submission)
    valued = backoffice.post(f"/api/v1/claims/backoffice/claims/{claim['id']}/valuation", json={"lines": [{
        "act_code": "G", "act_label": "Consultation", "amount_charged_cents": 5000, "secu_base_cents": 3000,
        "secu_rate_pct": 70, "secu_paid_cents": 1900, "participation_cents": 200, "practitioner_id": GP_PRACTITIONER,
        "practitioner_sector": 2, "optam": True,
    }]})
    assert valued.status_code == 200, valued.text
    [line] = valued.json()["lines"]
    assert (line["status"], line["rejection_reason"], line["duplicate_of"]) == ("rejected", "duplicate", gp["id"])
    assert valued.json()["status"] == "rejected"


def test_member_tokens_and_agent_tokens_each_stay_on_their_side(gateway, world, agent):
    member = world["heads"]["holder"]
    # In claims itself (its own port, no gateway in front): each token only on its own side.
    with httpx.Client(base_url=claims_url(world["system"]), timeout=30) as claims:
        for token in (agent.headers, agent_headers(world["system"])):  # identity's, and one signed here
            assert claims.get("/api/v1/claims/reimbursements", headers=token).status_code == 401
            assert claims.get("/api/v1/claims/guarantees", headers=token).status_code == 401
            assert claims.get("/api/v1/claims/backoffice/claims", headers=token).status_code == 200
        assert claims.get("/api/v1/claims/backoffice/claims", headers=member).status_code == 401
        assert claims.get("/api/v1/claims/backoffice/disputes", headers=member).status_code == 401
        assert claims.get("/api/v1/claims/reimbursements", headers=member).status_code == 200
    # And through the gateway.
    refused = gateway.get("/api/v1/claims/backoffice/claims", headers=member)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    assert gateway.get("/api/v1/claims/reimbursements", headers=agent.headers).status_code == 401


def test_a_dispute_reaches_the_back_office(gateway, world, backoffice):
    heads = world["heads"]["helene"]
    frame = by_act(lines(gateway, heads))[("OPT_B_MONTURE", d(5, 10))]
    too_long = gateway.post(f"/api/v1/claims/reimbursements/{frame['id']}/reports", headers=heads, json={"comment": "x" * 1001})
    assert too_long.status_code == 422
    reported = gateway.post(f"/api/v1/claims/reimbursements/{frame['id']}/reports", headers=heads,
                            json={"comment": "Je n'ai pas acheté de lunettes ce jour-là."})
    assert reported.status_code == 202, reported.text
    dispute_id = reported.json()["dispute_id"]
    assert gateway.post(f"/api/v1/claims/reimbursements/{frame['id']}/reports", headers=world["heads"]["child"], json={}).status_code == 404

    detail = gateway.get(f"/api/v1/claims/reimbursements/{frame['id']}", headers=heads).json()
    assert detail["reported"] is True and detail["reports"][0]["id"] == dispute_id
    disputes = backoffice.get("/api/v1/claims/backoffice/disputes").json()["items"]
    assert any(item["id"] == dispute_id and item["line_id"] == frame["id"] for item in disputes)
    [event] = claims_events(world["system"], lambda e: e["payload"].get("dispute_id") == dispute_id, expected=1)
    assert event["event_type"] == "claims.ReimbursementDisputed"
    assert event["payload"]["act_label"] == "Monture" and event["payload"]["member_id"] == str(world["helene"].member_id)
