"""Print the newest e-mail the SMTP sink stored, decoded (`make mail`): the activation link
without quoted-printable soft breaks."""

import os
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

folder = Path(os.environ.get("ESPACE_MAIL_DIR", Path(__file__).resolve().parents[2] / "var" / "mail"))
messages = sorted(folder.glob("*.eml"))
if not messages:
    sys.exit(f"no e-mail in {folder} yet")
message = BytesParser(policy=policy.default).parsebytes(messages[-1].read_bytes())
print(f"To: {message['To']}\nSubject: {message['Subject']}\n")
print(message.get_body(preferencelist=("plain",)).get_content())
