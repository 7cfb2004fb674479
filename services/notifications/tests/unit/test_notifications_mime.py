"""The MIME messages composed without the email package's builder read back, through the
email package's own parser (as the tests and `make mail` read them), as what was rendered."""

from email import policy
from email.parser import BytesParser

import pytest

from notifications.adapters.smtp import compose
from notifications.adapters.templates import Templates

FROM = "Espace adhérent <ne-pas-repondre@espace.example>"


def parse(data: bytes):
    return BytesParser(policy=policy.default).parsebytes(data)


def content(message, kind: str) -> str:
    # As with the messages EmailMessage built before: the parts come back with SMTP's CRLF.
    return message.get_body(preferencelist=(kind,)).get_content().replace("\r\n", "\n")


def test_a_rendered_email_reads_back_as_rendered_headers_and_both_parts():
    rendered = Templates().render("message_answered", first_name="Zoé", last_name="<N'Diaye>", link="https://x/messages?a=1&b=2")
    out = compose(mail_from=FROM, recipient="zoe@example.org", subject=rendered.subject, text=rendered.text,
                  html=rendered.html, message_id="<message_answered.e1.m2@espace.example>")
    message = parse(out.data)
    assert message["Subject"] == "Vous avez reçu une réponse de votre centre de gestion"
    assert message["From"].addresses[0].display_name == "Espace adhérent"
    assert message["From"].addresses[0].addr_spec == "ne-pas-repondre@espace.example"
    assert message["To"] == "zoe@example.org"
    assert message["Message-ID"] == "<message_answered.e1.m2@espace.example>"
    assert message["Date"].datetime is not None
    assert message.get_content_type() == "multipart/alternative"
    assert content(message, "plain") == rendered.text
    assert content(message, "html") == rendered.html
    assert not message.defects and all(not part.defects for part in message.walk())
    assert (out.sender, out.recipient, out.smtputf8) == ("ne-pas-repondre@espace.example", "zoe@example.org", False)


def test_long_lines_dots_equals_signs_and_trailing_spaces_survive_the_transfer_encoding():
    text = ("." * 3 + " début\n" + "x" * 300 + "\n=3D is not decoded twice \t \nhttps://x/activation?token=" + "Ab-_9" * 20
            + "\n\nfin ")
    out = compose(mail_from=FROM, recipient="a@example.org", subject="Activez votre espace adhérent", text=text,
                  html="<p>é</p>", message_id="<a@b>")
    assert all(len(line) <= 78 for line in out.data.split(b"\r\n"))  # SMTP's limit is 998; QP keeps to 76
    assert b"\n" not in out.data.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    message = parse(out.data)
    assert content(message, "plain") == text
    assert message["Subject"] == "Activez votre espace adhérent"


def test_an_internationalised_address_goes_with_smtputf8():
    out = compose(mail_from=FROM, recipient="zoé@exemple.fr", subject="s", text="t", html="h", message_id="<a@b>")
    assert out.smtputf8
    assert parse(out.data)["To"] == "zoé@exemple.fr"


@pytest.mark.parametrize("field", ["recipient", "subject", "message_id"])
def test_a_line_break_in_a_header_is_refused_not_sent(field):
    values = {"recipient": "a@example.org", "subject": "s", "message_id": "<a@b>"}
    values[field] += "\r\nBcc: someone@example.org"
    with pytest.raises(ValueError):
        compose(mail_from=FROM, text="t", html="h", **values)
