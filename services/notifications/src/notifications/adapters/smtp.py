"""Sending over SMTP (stdlib smtplib in a worker thread: one connection per message is plenty
at the rates a member space sends, and keeps failure handling simple)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from notifications.config import NotificationsSettings


class SmtpSender:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    def build(self, *, recipient: str, subject: str, text: str, html: str, message_id: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    async def send(self, message: EmailMessage) -> None:
        [error] = await self.send_many([message])
        if error is not None:
            raise error

    async def send_many(self, messages: list[EmailMessage]) -> list[Exception | None]:
        """Send over one connection; per message, None when the relay took it, else the error."""
        return await asyncio.to_thread(self._send_many, messages)

    def _send_many(self, messages: list[EmailMessage]) -> list[Exception | None]:
        s = self.settings
        try:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        except Exception as exc:
            return [exc] * len(messages)
        results: list[Exception | None] = []
        try:
            if s.smtp_starttls:
                # Verify the relay's certificate: the messages carry single-use links.
                client.starttls(context=ssl.create_default_context())
            if s.smtp_username and s.smtp_password:
                client.login(s.smtp_username, s.smtp_password.get_secret_value())
            for message in messages:
                try:
                    client.send_message(message)
                    results.append(None)
                except smtplib.SMTPRecipientsRefused as exc:  # this message only
                    results.append(exc)
                    client.rset()
                except Exception as exc:  # the connection is gone: the rest fail too
                    results.extend([exc] * (len(messages) - len(results)))
                    break
        except Exception as exc:
            results.extend([exc] * (len(messages) - len(results)))
        finally:
            try:
                client.quit()
            except Exception:
                client.close()
        return results
