"""One trace from click to inbox, X-Request-ID as the correlation id, and the metrics each
process serves on its own port."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx

from tests.integration.system import System


def _spans(system: System) -> list[dict]:
    spans = []
    for path in (Path(system.env["ESPACE_VAR"]) / "trace").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans


def test_one_registration_is_one_trace_from_the_gateway_to_the_smtp_send(system: System, gateway, registry, mailbox) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    member = registry.take()
    answer = gateway.post("/api/v1/identity/registrations", json=member.registration(), headers={"X-Request-ID": request_id})
    assert answer.status_code == 202
    assert answer.headers["x-correlation-id"] == request_id
    assert answer.headers["x-request-id"] == request_id
    mailbox.wait_for(member.email, timeout=30)

    expected = [
        ("gateway", "POST /api/v1/identity/registrations"),
        ("identity", "POST /api/v1/identity/registrations"),
        ("identity", "publish identity.ActivationLinkIssued"),
        ("notifications", "consume identity.ActivationLinkIssued"),
        ("notifications", "smtp send"),
    ]
    deadline = time.monotonic() + 20
    while True:
        found = _chain(_spans(system), request_id, expected)
        if len(found) == len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == expected


def _chain(spans: list[dict], request_id: str, expected: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The longest prefix of `expected` such that each step has a span that is a child of one
    of the step before (same trace, parent_id links), starting at the gateway's server span."""
    step = [s for s in spans if s["resource"]["attributes"]["service.name"] == "gateway"
            and s["attributes"].get("espace.correlation_id") == request_id]
    found: list[tuple[str, str]] = [expected[0]] if step else []
    for service, name in expected[1:]:
        parents = {s["context"]["span_id"] for s in step}
        step = [s for s in spans if s.get("parent_id") in parents
                and s["resource"]["attributes"]["service.name"] == service and s["name"] == name]
        if not step:
            break
        found.append((service, name))
    return found


def test_each_process_serves_its_metrics_on_its_own_port(system: System, gateway, registry, mailbox) -> None:
    member = registry.take()
    assert gateway.post("/api/v1/identity/registrations", json=member.registration()).status_code == 202
    mailbox.wait_for(member.email, timeout=30)

    def scrape(service: str) -> str:
        answer = httpx.get(system.metrics_url(service), timeout=5)
        assert answer.status_code == 200
        return answer.text

    http = ("espace_http_requests_total{", "espace_http_request_duration_seconds_bucket{")
    gw = scrape("gateway")
    assert 'route="/api/v1/identity/registrations",status="202"' in gw
    assert all(name in gw for name in http)
    identity = scrape("identity")
    assert 'route="/api/v1/identity/registrations",status="202"' in identity
    for name in ("espace_outbox_backlog ", "espace_outbox_oldest_pending_age_seconds "):
        assert name in identity
    for service in ("notifications", "documents", "claims"):
        text = scrape(service)
        assert all(name in text for name in http)  # /readyz at least
        assert f'espace_consumer_lag{{group="{service}",topic="identity.members.v1",partition=' in text
        assert f'espace_dead_lettered_total{{group="{service}",topic="identity.members.v1"}}' in text
    notifications = scrape("notifications")
    assert 'espace_emails_sent_total{kind="activation"}' in notifications
    for name in ("espace_emails_failed_total", "espace_emails_retried_total"):
        assert f"# TYPE {name.removesuffix('_total')} counter" in notifications
    # Nothing of it through the public port.
    public = gateway.get("/metrics")
    assert public.status_code != 200 or "espace_http_requests" not in public.text
