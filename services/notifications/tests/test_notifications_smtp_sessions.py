"""The SMTP sender against a real SMTP server (aiosmtpd, as the local sink): a batch over one
kept session, a session the server dropped meanwhile, one refused recipient among others, and
a server that is not there."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiosmtpd.controller import Controller

from notifications.adapters.smtp import SmtpSender
from notifications.config import NotificationsSettings


class Recorder:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.sessions: set[int] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sessions.add(id(session))
        self.received.append(envelope.original_content)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


def sender_for(port: int, **overrides) -> SmtpSender:
    return SmtpSender(NotificationsSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=5, **overrides))


def messages(sender: SmtpSender, *recipients: str):
    return [sender.compose(recipient=r, subject="Objet", text=f"pour {r}", html="<p>x</p>", message_id=f"<{i}@test>")
            for i, r in enumerate(recipients)]


def test_batches_go_over_one_kept_session(server):
    controller, recorder = server
    sender = sender_for(controller.port)
    assert asyncio.run(sender.send_many(messages(sender, "a@example.org", "b@example.org"))) == [None, None]
    assert asyncio.run(sender.send_many(messages(sender, "c@example.org"))) == [None]
    assert len(recorder.received) == 3
    assert len(recorder.sessions) == 1  # the second batch reused the first one's session
    sender.close()


def test_a_session_the_server_dropped_is_replaced_and_nothing_is_lost_or_doubled(server):
    controller, recorder = server
    sender = sender_for(controller.port)
    assert asyncio.run(sender.send_many(messages(sender, "a@example.org"))) == [None]
    for client, _ in sender._idle:  # what a relay's idle timeout does to the kept session
        client.sock.shutdown(socket.SHUT_RDWR)
    assert asyncio.run(sender.send_many(messages(sender, "b@example.org", "c@example.org"))) == [None, None]
    assert [m.split(b"Message-ID: ")[1][:8] for m in recorder.received] == [b"<0@test>", b"<0@test>", b"<1@test>"]
    assert len(recorder.sessions) == 2
    sender.close()


def test_a_refused_recipient_fails_alone(server):
    controller, recorder = server
    sender = sender_for(controller.port)
    results = asyncio.run(sender.send_many(messages(sender, "a@example.org", "refused@example.org", "c@example.org")))
    assert results[0] is None and results[2] is None
    assert type(results[1]).__name__ == "SMTPRecipientsRefused"
    assert len(recorder.received) == 2
    sender.close()


def test_no_server_fails_every_message_of_the_batch():
    sender = sender_for(free_port())
    results = asyncio.run(sender.send_many(messages(sender, "a@example.org", "b@example.org")))
    assert all(isinstance(r, OSError) for r in results) and len(results) == 2
