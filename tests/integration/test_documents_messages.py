"""Messages to the management centre: a member's thread with an attachment, the back-office queue
(agent tokens), replies and closing, all audited; a dispute from claims opens a thread tied to
the line, an agent answers and MessageAnswered goes out (notifications e-mails the member)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from shared.contracts.claims import ReimbursementDisputed
from shared.contracts.topics import DOCUMENTS_DOCUMENTS
from tests.integration.documents_support import (
    agent_token,
    documents_db,
    events,
    open_session,
    pdf_bytes,
    publish,
    signing_key_file,
    wait_until,
)


def test_a_member_writes_an_agent_answers_from_the_queue_and_closes_every_step_audited(system, gateway, mailbox, registry):
    member = open_session(system, gateway, mailbox, registry.take())
    other = open_session(system, gateway, mailbox, registry.take())
    assert "card" in gateway.get("/api/v1/documents/messages/subjects", headers=member.headers).json()
    bad = gateway.post("/api/v1/documents/messages", headers=member.headers, data={"subject": "nope", "body": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "subject"
    blank = gateway.post("/api/v1/documents/messages", headers=member.headers, data={"subject": "card", "body": "  \n "})
    assert blank.status_code == 422 and blank.json()["errors"] == [
        {"field": "body", "code": "required", "message": "Écrivez votre message."}]
    not_a_file = gateway.post("/api/v1/documents/messages", headers=member.headers,
                              files=[("subject", (None, "card")), ("body", (None, "Bonjour")), ("files", (None, "{}"))])
    assert not_a_file.status_code == 422 and not_a_file.json()["errors"][0]["code"] == "not_a_file"
    assert gateway.get("/api/v1/documents/messages", headers=member.headers).json() == []  # nothing half-written
    four = [("files", (f"p{i}.pdf", pdf_bytes(f"p{i}"), "application/pdf")) for i in range(4)]
    too_many = gateway.post("/api/v1/documents/messages", headers=member.headers,
                            data={"subject": "card", "body": "Bonjour"}, files=four)
    assert too_many.status_code == 422 and "3 fichiers" in too_many.json()["detail"]
    answer = gateway.post("/api/v1/documents/messages", headers=member.headers,
                          data={"subject": "card", "body": "Ma carte n'affiche pas mon fils."},
                          files=[("files", ("livret.pdf", pdf_bytes("livret de famille"), "application/pdf"))])
    assert answer.status_code == 201, answer.text
    thread = answer.json()
    assert thread["status"] == "open" and thread["messages"][0]["attachments"][0]["file_name"] == "livret.pdf"
    assert gateway.get(f"/api/v1/documents/messages/{thread['id']}", headers=other.headers).status_code == 404
    attachment = thread["messages"][0]["attachments"][0]["document_id"]
    wait_until(lambda: gateway.get(f"/api/v1/documents/messages/{thread['id']}", headers=member.headers)
               .json()["messages"][0]["attachments"][0]["scan_status"] == "clean", what="attachment scanned")
    assert gateway.post(f"/api/v1/documents/{attachment}/download-links", headers=member.headers).status_code == 201

    agent_id = uuid.uuid4()
    agent = {"Authorization": f"Bearer {agent_token(signing_key_file(system), agent_id=agent_id)}"}
    assert gateway.get("/api/v1/documents/backoffice/threads", headers=member.headers).status_code == 401
    queue, cursor = [], None
    while True:  # other tests leave open threads too: page through the whole queue
        page = gateway.get("/api/v1/documents/backoffice/threads", headers=agent,
                           params={"limit": 5, **({"cursor": cursor} if cursor else {})}).json()
        queue += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    ids = [t["id"] for t in queue]
    assert thread["id"] in ids and len(ids) == len(set(ids))
    stamps = [t["waiting_since"] for t in queue]
    assert stamps == sorted(stamps)  # the longest-waiting first
    reply = gateway.post(f"/api/v1/documents/backoffice/threads/{thread['id']}/replies", headers=agent,
                         json={"body": "Nous avons ajouté Léo, la nouvelle carte est disponible."})
    assert reply.status_code == 201 and reply.json()["status"] == "answered"
    [answered] = events(system, DOCUMENTS_DOCUMENTS, "documents.MessageAnswered", lambda p: p["thread_id"] == thread["id"])
    assert answered["member_id"] == member.member_id and answered["subject_code"] == "card"
    seen = gateway.get(f"/api/v1/documents/messages/{thread['id']}", headers=member.headers).json()
    assert [m["author"] for m in seen["messages"]] == ["member", "agent"]
    again = gateway.post(f"/api/v1/documents/messages/{thread['id']}/replies", headers=member.headers, data={"body": "Merci !"})
    assert again.status_code == 201 and again.json()["status"] == "open"
    closed = gateway.post(f"/api/v1/documents/backoffice/threads/{thread['id']}/close", headers=agent)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = gateway.post(f"/api/v1/documents/messages/{thread['id']}/replies", headers=member.headers, data={"body": "Encore"})
    assert late.status_code == 409
    actions = [r["action"] for r in documents_db(
        system, "SELECT action FROM agent_actions WHERE agent_id = $1 ORDER BY id", agent_id)]
    assert set(actions[:-2]) == {"queue_viewed"} and actions[-2:] == ["thread_answered", "thread_closed"]


def test_a_dispute_opens_a_thread_tied_to_the_line_and_the_answer_is_published(system, gateway, mailbox, registry):
    member = open_session(system, gateway, mailbox, registry.take())
    claim_id, line_id, dispute_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = ReimbursementDisputed(dispute_id=dispute_id, claim_id=claim_id, line_id=line_id, member_id=uuid.UUID(member.member_id),
                                  holder_member_id=uuid.UUID(member.member_id), beneficiary_member_id=uuid.UUID(member.member_id),
                                  care_date=date(2026, 11, 3), act_label="Séance de kinésithérapie", comment="Je n'y suis pas allée.",
                                  disputed_at=datetime.now(UTC))
    publish(system, event, key=member.member_id)
    publish(system, event, key=member.member_id)  # a replay (another event id) opens no second thread
    threads = wait_until(lambda: gateway.get("/api/v1/documents/messages", headers=member.headers).json(), what="a thread")
    time_to_settle = wait_until(lambda: True)
    assert time_to_settle
    [thread] = threads
    assert thread["subject"] == "reimbursement_dispute" and thread["claim_id"] == str(claim_id) and thread["line_id"] == str(line_id)
    body = gateway.get(f"/api/v1/documents/messages/{thread['id']}", headers=member.headers).json()["messages"][0]["body"]
    assert "Séance de kinésithérapie" in body and "03/11/2026" in body
    agent = {"Authorization": f"Bearer {agent_token(signing_key_file(system))}"}
    assert gateway.post(f"/api/v1/documents/backoffice/threads/{thread['id']}/replies", headers=agent,
                        json={"body": "Nous vérifions auprès du professionnel."}).status_code == 201
    [answered] = events(system, DOCUMENTS_DOCUMENTS, "documents.MessageAnswered", lambda p: p["thread_id"] == thread["id"])
    assert answered["member_id"] == member.member_id
    assert len(gateway.get("/api/v1/documents/messages", headers=member.headers).json()) == 1
