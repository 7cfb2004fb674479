"""Local SMTP sink: accepts every message and keeps it, byte for byte, as an .eml file.

Run by deploy/local/smtp.sh; people and tests read the files (e.g. the activation e-mail) from
$ESPACE_MAIL_DIR. Nothing is relayed. No AUTH and no STARTTLS are offered: point the mailer at
127.0.0.1:$SMTP_PORT without credentials or TLS.

    python deploy/local/smtp_sink.py [--host 127.0.0.1] [--port 1025] [--maildir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
from datetime import datetime, timezone
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("smtp_sink")


class MaildirSink:
    """aiosmtpd handler writing each message to <maildir>/<UTC time>-<random>.eml."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    def store(self, data: bytes) -> str:
        # Tests may wipe the folder between cases: recreate it rather than fail the delivery.
        self.maildir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{secrets.token_hex(3)}.eml"
        # Written under a dot-name that no "*.eml" glob matches, then renamed in one step, so a
        # reader never sees half a message.
        tmp = self.maildir / f".{name}.tmp"
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, self.maildir / name)
        return name

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # original_content: the DATA bytes as received (dot-unstuffed, CRLF kept), undecoded.
        data = envelope.original_content or b""
        try:
            name = self.store(data)
        except OSError as exc:
            log.error("could not store a message of %d bytes: %s", len(data), exc)
            return "451 Requested action aborted: local error in processing"
        # No addresses or content in the log: file name and size only.
        log.info("stored %s (%d bytes)", name, len(data))
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, maildir: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = MaildirSink(maildir)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="espace-smtp-sink", enable_SMTPUTF8=True), host, port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening on %s:%d, writing to %s", host, port, maildir)
    await stop.wait()
    server.close()
    await server.wait_closed()
    log.info("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMTP_PORT", "1025")))
    parser.add_argument("--maildir", type=Path, default=Path(os.environ.get("ESPACE_MAIL_DIR", "var/mail")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd's own INFO lines name peers and envelope addresses.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.maildir.resolve()))


if __name__ == "__main__":
    main()
