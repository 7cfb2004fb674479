"""Event contracts: a change that would break a consumer of an already published version fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.contracts.compat import incompatibilities
from shared.contracts.envelope import Envelope
from shared.contracts.registry import EVENT_TYPES
from shared.contracts.snapshot import EXAMPLES, SCHEMAS, file_stem

COMMITTED = sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json"))


def _model_for(stem: str):
    event_type, _, version = stem.rpartition(".v")
    cls = EVENT_TYPES.get(event_type)
    if cls is None or cls.schema_version != int(version):
        pytest.fail(f"{stem} is committed but no current model serves it: publish a new version beside the old one")
    return cls


def test_every_event_has_a_committed_schema_and_example():
    for event_type, cls in EVENT_TYPES.items():
        stem = file_stem(event_type, cls.schema_version)
        assert (SCHEMAS / f"{stem}.schema.json").exists(), f"run python -m shared.contracts.snapshot for {stem}"
        assert (SCHEMAS / f"{stem}.example.json").exists()
        assert event_type in EXAMPLES


@pytest.mark.parametrize("stem", COMMITTED)
def test_the_committed_example_still_parses(stem):
    cls = _model_for(stem)
    example = json.loads((SCHEMAS / f"{stem}.example.json").read_text())
    event = cls.model_validate(example)
    # and it goes through the envelope unchanged, secrets included (they must reach the consumer)
    wire = Envelope.wrap(event, producer="test", correlation_id=None).model_dump_json()
    assert cls.model_validate(Envelope.model_validate_json(wire).payload) == event


@pytest.mark.parametrize("stem", COMMITTED)
def test_the_current_model_is_compatible_with_the_committed_schema(stem):
    committed = json.loads((SCHEMAS / f"{stem}.schema.json").read_text())
    assert incompatibilities(committed, _model_for(stem).model_json_schema()) == []


def test_a_consumer_ignores_fields_it_does_not_know():
    cls = EVENT_TYPES["identity.MemberRegistered"]
    example = json.loads((SCHEMAS / "identity.MemberRegistered.v1.example.json").read_text())
    assert cls.model_validate({**example, "added_later": 1}) == cls.model_validate(example)


def test_the_compatibility_check_catches_removed_retyped_and_new_required_fields():
    committed = json.loads((SCHEMAS / "identity.AccountActivated.v1.schema.json").read_text())
    current = json.loads(json.dumps(committed))
    del current["properties"]["activated_at"]
    current["properties"]["member_id"]["type"] = "integer"
    current["properties"]["extra"] = {"type": "string"}
    current["required"].append("extra")
    assert incompatibilities(committed, current) == [
        "field member_id changed its type",
        "field activated_at was removed",
        "new required fields ['extra'] break old producers; make them optional",
    ]
