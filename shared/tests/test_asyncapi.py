"""The committed AsyncAPI documents (services/<name>/asyncapi.json) are what the code generates:
a change to a contract or to what a service consumes shows in review as a change to them.
Regenerate with `python -m shared.platform.asyncapi write`."""

from __future__ import annotations

import json

import pytest

from shared.contracts.compat import consumed_events, consumer_breaks
from shared.platform.asyncapi import SERVICES, committed_path, generate_in_subprocess


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_committed_document_is_what_the_service_generates(service: str) -> None:
    generated = json.loads(generate_in_subprocess(service))
    committed = json.loads(committed_path(service).read_text(encoding="utf-8"))
    assert committed == generated, f"services/{service}/asyncapi.json is stale: python -m shared.platform.asyncapi write {service}"


def test_what_each_consumer_reads_is_what_the_producer_sends() -> None:
    """Each event a service's committed document says it consumes is sent by the topic's owner,
    and every field the consumer's copy names (and requires), nested ones included, is in the
    producer's: a producer dropping or renaming a field a consumer reads fails here until both
    sides are regenerated (shared.contracts.compat, which `make release` runs too)."""
    documents = {s: json.loads(committed_path(s).read_text(encoding="utf-8")) for s in SERVICES}
    assert [str(p) for p in consumer_breaks(documents)] == []
    assert len(consumed_events(documents)) >= 10  # the documents do list consumers: not vacuous
