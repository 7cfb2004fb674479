"""No token, password or password hash in any service's log line or span attribute.

Named to run after the other integration tests, so their logs are searched too; it makes its
own secrets on top, and knows each of them."""

from __future__ import annotations

import time

from tests.integration.conftest import PASSWORD, activation_token

SERVICE_LOGS = ("identity", "notifications", "documents", "claims", "gateway")


def _everything_written(system) -> str:
    # The span exporter batches every 5 s: wait for it, then read logs and traces.
    time.sleep(6)
    parts = [(system.log_dir / f"{name}.log").read_text(errors="replace") for name in SERVICE_LOGS]
    trace_dir = system.log_dir.parent / "trace"
    parts += [p.read_text(errors="replace") for p in trace_dir.glob("*.jsonl")]
    return "\n".join(parts)


def test_no_secret_reaches_a_log_or_a_span(system, gateway, mailbox, registry):
    member = registry.take()
    secrets = {"password": PASSWORD}
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    secrets["activation token"] = activation_token(mailbox.wait_for(member.email)[0])
    assert gateway.post("/api/v1/identity/activations", json={"token": secrets["activation token"]}).status_code == 200
    session = gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": PASSWORD})
    assert session.status_code == 200
    for name, value in session.json().items():
        if name.endswith("token") and isinstance(value, str):
            secrets[name] = value
    assert gateway.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {secrets['access_token']}"}).status_code == 200
    # A wrong password too: failures are where code tends to log what it got.
    gateway.post("/api/v1/identity/sessions", json={"identifier": member.membership_number, "password": "Wrong-pass-99!"})

    written = _everything_written(system)
    assert len(written) > 1000  # real files were read, not nothing
    for name, value in secrets.items():
        assert value not in written, f"the {name} appears in a log or a span"
    assert "Wrong-pass-99!" not in written
    assert "$argon2id$" not in written
    assert "Bearer " not in written
