"""Sending over SMTP: stdlib smtplib in a worker thread, one batch per thread hop, over sessions
kept open between batches; and the MIME message composed here, straight to bytes.

Why not `email.message.EmailMessage`: building one (set_content + add_alternative) and
flattening it took ~4.4 ms of CPU per e-mail here, most of notifications' CPU per e-mail (its
policy parses and refolds every header). Our messages are always the same shape (two UTF-8
parts, headers we write ourselves), so they are composed directly (~0.05 ms): quoted-printable
bodies (binascii), RFC 2047 words for non-ASCII headers, CRLF. Readers (the tests, `make mail`)
parse them back with the email package's default policy.
"""

from __future__ import annotations

import asyncio
import binascii
import secrets
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from notifications.config import NotificationsSettings

CRLF = b"\r\n"


@dataclass(frozen=True)
class Outgoing:
    """One message ready for SMTP: envelope addresses and the bytes of the message."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool = False


def _no_line_breaks(value: str) -> str:
    # A CR or LF in a header value would start a header of the caller's choosing.
    if "\r" in value or "\n" in value:
        raise ValueError("line break in an e-mail header")
    return value


@lru_cache(maxsize=256)
def encode_header(name: str, value: str) -> bytes:
    """`Name: value` for a text header (Subject): as is when ASCII, else RFC 2047 words, folded.
    Cached: subjects are per kind of e-mail, a handful of strings."""
    _no_line_breaks(value)
    if value.isascii():
        return f"{name}: {value}".encode("ascii")
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(13) + chr(10))}".encode("ascii")


@lru_cache(maxsize=16)
def encode_mailbox(value: str) -> tuple[str, bytes]:
    """('addr@x', b'=?utf-8?...?= <addr@x>') from 'Display name <addr@x>' (the From setting)."""
    name, address = parseaddr(_no_line_breaks(value))
    return address, formataddr((name, address), charset="utf-8").encode("ascii")


def _body(content_type: str, text: str) -> bytes:
    # Quoted-printable with CRLF line ends: `=` is always encoded (=3D), so a boundary that
    # starts with "=_" can never occur in a body.
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", CRLF)
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode("ascii")
        + encoded
    )


def compose(*, mail_from: str, recipient: str, subject: str, text: str, html: str, message_id: str,
            date: str | None = None) -> Outgoing:
    """A multipart/alternative message (text, then HTML) as bytes, with its envelope."""
    sender, from_header = encode_mailbox(mail_from)
    _no_line_breaks(recipient)
    _no_line_breaks(message_id)
    smtputf8 = not recipient.isascii()
    boundary = f"=_{secrets.token_hex(12)}"  # the header stays under 78 characters
    head = CRLF.join(
        (
            b"From: " + from_header,
            b"To: " + recipient.encode("utf-8"),  # UTF-8 only with SMTPUTF8 (an internationalised address)
            encode_header("Subject", subject),
            b"Date: " + (date or formatdate(localtime=False)).encode("ascii"),
            b"Message-ID: " + message_id.encode("ascii"),
            b"MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode("ascii"),
        )
    )
    separator = f"\r\n--{boundary}\r\n".encode("ascii")
    data = (
        head + CRLF + CRLF
        + separator[2:] + _body("text/plain", text)
        + separator + _body("text/html", html)
        + f"\r\n--{boundary}--\r\n".encode("ascii")
    )
    return Outgoing(sender=sender, recipient=recipient, data=data, smtputf8=smtputf8)


class SmtpSender:
    """Sends batches over SMTP sessions that stay open between batches (a pool, one session per
    concurrent batch): no TCP connect, EHLO, STARTTLS or AUTH per batch."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        self._idle: list[tuple[smtplib.SMTP, float]] = []
        self._lock = threading.Lock()

    def compose(self, *, recipient: str, subject: str, text: str, html: str, message_id: str,
                date: str | None = None) -> Outgoing:
        return compose(mail_from=self.settings.mail_from, recipient=recipient, subject=subject, text=text, html=html,
                       message_id=message_id, date=date)

    async def send_many(self, messages: list[Outgoing]) -> list[Exception | None]:
        """Per message, None when the relay took it, else the error."""
        if not messages:
            return []
        return await asyncio.to_thread(self._send_many, messages)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client, _ in idle:
            self._quit(client)

    # -- in the worker thread -----------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            if s.smtp_starttls:
                # Verify the relay's certificate: the messages carry single-use links.
                client.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password:
                client.login(s.smtp_username, s.smtp_password.get_secret_value())
        except Exception:
            client.close()
            raise
        return client

    def _take(self) -> smtplib.SMTP | None:
        """An open session idle for less than smtp_idle_seconds (relays drop idle ones), or None."""
        with self._lock:
            while self._idle:
                client, since = self._idle.pop()
                if time.monotonic() - since < self.settings.smtp_idle_seconds:
                    return client
                self._quit(client)
        return None

    def _give_back(self, client: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.append((client, time.monotonic()))

    @staticmethod
    def _quit(client: smtplib.SMTP) -> None:
        try:
            client.quit()
        except Exception:
            client.close()

    def _send_many(self, messages: list[Outgoing]) -> list[Exception | None]:
        client = self._take()
        reused = client is not None
        results: list[Exception | None] = []
        while len(results) < len(messages):
            if client is None:
                try:
                    client = self._connect()
                except Exception as exc:
                    return results + [exc] * (len(messages) - len(results))
            message = messages[len(results)]
            try:
                options = ["SMTPUTF8", "BODY=8BITMIME"] if message.smtputf8 else []
                client.sendmail(message.sender, [message.recipient], message.data, mail_options=options)
                results.append(None)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                    smtplib.SMTPNotSupportedError) as exc:  # this message only; the session goes on
                results.append(exc)
                try:
                    client.rset()
                except Exception:
                    client.close()
                    client = None
            except Exception as exc:  # the session is gone
                client.close()
                client = None
                if reused and not results and isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
                    # A kept session the relay had dropped meanwhile (found at MAIL FROM): once
                    # more on a new session. Were it dropped after taking the message, that is
                    # the one resend a crash can cause too, with the same Message-ID.
                    reused = False
                    continue
                # The rest fail too (retried later with backoff, like a relay that is down).
                return results + [exc] * (len(messages) - len(results))
        if client is not None:
            self._give_back(client)
        return results
