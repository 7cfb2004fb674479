"""The committed AsyncAPI documents (services/<name>/asyncapi.json) are what the code generates:
a change to a contract or to what a service consumes shows in review as a change to them.
Regenerate with `python -m shared.platform.asyncapi write`."""

from __future__ import annotations

import json

import pytest

from shared.platform.asyncapi import SERVICES, committed_path, generate_in_subprocess


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_committed_document_is_what_the_service_generates(service: str) -> None:
    generated = json.loads(generate_in_subprocess(service))
    committed = json.loads(committed_path(service).read_text(encoding="utf-8"))
    assert committed == generated, f"services/{service}/asyncapi.json is stale: python -m shared.platform.asyncapi write {service}"


def _models(doc: dict, payload_ref: str) -> set[str]:
    schema = doc["components"]["schemas"][payload_ref.rsplit("/", 1)[1]]
    discriminator = schema.get("discriminator")
    mapping = discriminator.get("mapping", {}) if isinstance(discriminator, dict) else {}
    refs = [schema["$ref"]] if "$ref" in schema else list(mapping.values())
    refs += [option["$ref"] for option in schema.get("oneOf", []) + schema.get("anyOf", []) if "$ref" in option]
    return {r.rsplit("/", 1)[1] for r in refs} or {payload_ref.rsplit("/", 1)[1]}


def _event_schema(doc: dict, message_model: str) -> dict:
    schemas = doc["components"]["schemas"]
    ref = schemas[message_model]["properties"]["payload"]
    return schemas[ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref


def test_what_each_consumer_reads_is_what_the_producer_sends() -> None:
    """Each event a service's committed document says it consumes is sent by the topic's owner,
    and every field the consumer's copy names (and requires) is in the producer's: a producer
    dropping or renaming a field a consumer reads fails here until both sides are regenerated."""
    documents = {s: json.loads(committed_path(s).read_text(encoding="utf-8")) for s in SERVICES}
    sent: dict[str, tuple[str, dict]] = {}
    for service, doc in documents.items():
        for key, message in doc["components"].get("messages", {}).items():
            if ":send:" in key:
                for model in _models(doc, message["payload"]["$ref"]):
                    sent[model] = (service, _event_schema(doc, model))
    checked = 0
    for service, doc in documents.items():
        for key, message in doc["components"].get("messages", {}).items():
            if ":send:" in key:
                continue
            for model in _models(doc, message["payload"]["$ref"]):
                assert model in sent, f"{service} consumes {model}, which no service's document sends"
                producer, produced = sent[model]
                consumed = _event_schema(doc, model)
                missing = set(consumed.get("properties", {})) - set(produced.get("properties", {}))
                assert not missing, f"{service} reads {sorted(missing)} of {model}, which {producer} no longer sends"
                assert set(consumed.get("required", [])) <= set(produced.get("required", [])), (service, model)
                checked += 1
    assert checked >= 10  # the documents do list consumers: the test is not vacuous
