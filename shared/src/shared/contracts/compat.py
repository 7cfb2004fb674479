"""Does a service's event contract still serve its consumers? The checks behind
shared/tests/test_contracts.py, shared/tests/test_asyncapi.py and `make release`
(shared/platform/release.py), as functions that return what is wrong instead of asserting.

Three sources, all committed:
- `shared/src/shared/contracts/schemas/<event>.v<n>.schema.json` (+ `.example.json`): each
  published event version as first released; the current model must stay compatible with it
  (`incompatibilities`) and still parse its example.
- `services/<name>/asyncapi.json`: what each service sends and what it consumes, field by
  field; every field a consumer's document names must be in its producer's (`consumer_breaks`).
- what the code generates now: a committed document that differs from it is stale.

    python -m shared.contracts.compat claims     # what would stop `make release SERVICE=claims`
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.platform.asyncapi import SERVICES  # the services with event contracts

REPO = Path(__file__).resolve().parents[4]
SCHEMAS_DIR = Path("shared/src/shared/contracts/schemas")


@dataclass(frozen=True)
class Problem:
    """One reason a release is refused: `event` and `field` when it is about one, and the
    consumers (services) that read that field."""

    kind: str  # "consumer" | "schema" | "stale"
    message: str
    event: str = ""
    field: str = ""
    consumers: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


def asyncapi_path(service: str, root: Path = REPO) -> Path:
    return root / "services" / service / "asyncapi.json"


def committed_documents(root: Path = REPO) -> dict[str, dict]:
    return {s: json.loads(asyncapi_path(s, root).read_text(encoding="utf-8")) for s in SERVICES if asyncapi_path(s, root).exists()}


# -- AsyncAPI documents: what each consumer reads against what its producer sends ----------------


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def message_models(doc: dict, payload_ref: str) -> set[str]:
    """The event models (component schema names) a message payload stands for."""
    schema = doc["components"]["schemas"][_name(payload_ref)]
    discriminator = schema.get("discriminator")
    mapping = discriminator.get("mapping", {}) if isinstance(discriminator, dict) else {}
    refs = [schema["$ref"]] if "$ref" in schema else list(mapping.values())
    refs += [option["$ref"] for option in schema.get("oneOf", []) + schema.get("anyOf", []) if "$ref" in option]
    return {_name(r) for r in refs} or {_name(payload_ref)}


def event_schema(doc: dict, message_model: str) -> dict:
    schemas = doc["components"]["schemas"]
    ref = schemas[message_model]["properties"]["payload"]
    return schemas[_name(ref["$ref"])] if "$ref" in ref else ref


def event_name(doc: dict, message_model: str) -> str:
    """`claims.ClaimSettled` for the model `ClaimSettledMessage` (its event_type constant)."""
    prop = doc["components"]["schemas"][message_model].get("properties", {}).get("event_type", {})
    return prop.get("const") or (prop.get("enum") or [message_model.removesuffix("Message")])[0]


def field_paths(doc: dict, schema: dict, prefix: str = "", depth: int = 0) -> dict[str, dict]:
    """Every field of an event schema, nested ones included (`lines[].line_number`), following
    the document's $refs, arrays and optional (anyOf with null) values."""
    if depth > 8:
        return {}
    schemas = doc.get("components", {}).get("schemas", {})
    if "$ref" in schema:
        return field_paths(doc, schemas.get(_name(schema["$ref"]), {}), prefix, depth + 1)
    out: dict[str, dict] = {}
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        out.update(field_paths(doc, option, prefix, depth + 1))
    if "items" in schema and isinstance(schema["items"], dict):
        out.update(field_paths(doc, schema["items"], f"{prefix}[]", depth + 1))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        out[path] = prop
        out.update(field_paths(doc, prop, path, depth + 1))
    return out


def sent_events(documents: Mapping[str, dict]) -> dict[str, tuple[str, str, dict]]:
    """model -> (producer, event name, payload schema) for every message a document sends."""
    sent: dict[str, tuple[str, str, dict]] = {}
    for service, doc in documents.items():
        for key, message in doc.get("components", {}).get("messages", {}).items():
            if ":send:" in key:
                for model in message_models(doc, message["payload"]["$ref"]):
                    sent[model] = (service, event_name(doc, model), field_paths(doc, event_schema(doc, model)))
    return sent


def consumed_events(documents: Mapping[str, dict]) -> list[tuple[str, str, str, dict[str, dict], list[str]]]:
    """(consumer, model, event name, its field paths, its required fields) per consumed event."""
    out, seen = [], set()
    for service, doc in documents.items():
        for key, message in doc.get("components", {}).get("messages", {}).items():
            if ":send:" in key:
                continue
            for model in message_models(doc, message["payload"]["$ref"]):
                if (service, model) in seen:  # one message per topic, the same payload union
                    continue
                seen.add((service, model))
                schema = event_schema(doc, model)
                out.append((service, model, event_name(doc, model), field_paths(doc, schema), schema.get("required", [])))
    return out


def readers(documents: Mapping[str, dict], event: str, field: str) -> tuple[str, ...]:
    """The services whose committed document consumes `event` and names `field`."""
    return tuple(sorted({c for c, _, name, fields, _ in consumed_events(documents) if name == event and field in fields}))


def consumer_breaks(documents: Mapping[str, dict], *, producer: str | None = None) -> list[Problem]:
    """Every field a consumer's document names (and requires) of an event, that the event's
    producer's document no longer sends (or no longer requires). With `producer`, only the
    events that service sends or consumes."""
    sent = sent_events(documents)
    problems: list[Problem] = []
    for consumer, model, event, fields, required in consumed_events(documents):
        if model not in sent:  # an event dropped altogether (its owner is its name's first segment)
            if producer in (None, consumer, event.split(".", 1)[0]):
                problems.append(Problem(
                    "consumer",
                    f"{event}: read by {consumer} (services/{consumer}/asyncapi.json) but no service's AsyncAPI document sends it",
                    event, consumers=(consumer,),
                ))
            continue
        owner, _, produced = sent[model]
        if producer not in (None, owner, consumer):
            continue
        for field in sorted(set(fields) - set(produced)):
            problems.append(Problem(
                "consumer",
                f"{event}: field `{field}` is read by {consumer} (services/{consumer}/asyncapi.json) "
                f"but {owner} no longer sends it",
                event, field, (consumer,),
            ))
        owner_doc = documents[owner]
        owner_required = set(event_schema(owner_doc, model).get("required", []))
        for field in sorted(set(required) - owner_required):
            if field in produced:
                problems.append(Problem(
                    "consumer",
                    f"{event}: field `{field}` is required by {consumer} (services/{consumer}/asyncapi.json) "
                    f"but optional in what {owner} sends",
                    event, field, (consumer,),
                ))
    return problems


def stale_documents(services: list[str], documents: Mapping[str, dict], generate: Callable[[str], str]) -> list[Problem]:
    problems = []
    for service in services:
        if json.loads(generate(service)) != documents.get(service):
            problems.append(Problem(
                "stale",
                f"services/{service}/asyncapi.json is stale (not what the code generates): "
                f"python -m shared.platform.asyncapi write {service}, review the diff, commit",
            ))
    return problems


# -- the committed JSON schemas of each published event version ----------------------------------


def incompatibilities(committed: dict, current: dict) -> list[str]:
    """What a current model's JSON schema breaks of the committed one: a field removed or
    retyped, or a new required field (old producers do not send it)."""
    found = []
    for name, prop in committed["properties"].items():
        if name not in current["properties"]:
            found.append(f"field {name} was removed")
            continue
        for key in ("type", "format", "$ref", "anyOf"):
            if current["properties"][name].get(key) != prop.get(key):
                found.append(f"field {name} changed its {key}")
    new_required = set(current.get("required", [])) - set(committed.get("required", []))
    if new_required:
        found.append(f"new required fields {sorted(new_required)} break old producers; make them optional")
    return found


def current_schemas() -> dict[str, tuple[int, dict]]:
    """event type -> (schema version, JSON schema) of the models in the code."""
    from shared.contracts.registry import EVENT_TYPES

    return {name: (cls.schema_version, cls.model_json_schema()) for name, cls in EVENT_TYPES.items()}


def schema_problems(
    service: str,
    *,
    root: Path = REPO,
    current: Mapping[str, tuple[int, dict]] | None = None,
    documents: Mapping[str, dict] | None = None,
    parse_example: Callable[[str, dict], None] | None = None,
) -> list[Problem]:
    """The events `service` produces (`<service>.*`) against their committed schema and
    example: missing files (stale), incompatible changes (naming the consumers that read the
    field), an example the model no longer reads."""
    current = current_schemas() if current is None else current
    documents = committed_documents(root) if documents is None else documents
    schemas_dir = root / SCHEMAS_DIR
    problems: list[Problem] = []
    for event, (version, schema) in sorted(current.items()):
        if event.split(".", 1)[0] != service:
            continue
        stem = f"{event}.v{version}"
        schema_file, example_file = schemas_dir / f"{stem}.schema.json", schemas_dir / f"{stem}.example.json"
        if not schema_file.exists() or not example_file.exists():
            problems.append(Problem("stale", f"{stem}: no committed schema/example: python -m shared.contracts.snapshot, commit", event))
            continue
        committed = json.loads(schema_file.read_text(encoding="utf-8"))
        for found in incompatibilities(committed, schema):
            field = found.split()[1] if found.startswith("field ") else ""
            who = readers(documents, event, field) if field else ()
            read_by = f"read by {', '.join(who)}" if who else "no consumer's AsyncAPI document names it, but v%d is published" % version
            problems.append(Problem(
                "schema",
                f"{stem}: {found} ({read_by}); a breaking change is a new version beside the old one",
                event, field, who,
            ))
        if parse_example is not None:
            try:
                parse_example(event, json.loads(example_file.read_text(encoding="utf-8")))
            except Exception as exc:  # noqa: BLE001 - any refusal of the example is the finding
                problems.append(Problem("schema", f"{stem}: the committed example no longer parses: {exc}", event))
    prefix = f"{service}."
    for path in sorted(schemas_dir.glob(f"{prefix}*.schema.json")):
        stem = path.name.removesuffix(".schema.json")
        event, _, version = stem.rpartition(".v")
        if event not in current or current[event][0] != int(version):
            problems.append(Problem(
                "schema",
                f"{stem} is committed but no current model serves it: publish a new version beside the old one",
                event,
            ))
    return problems


def _parse_with_model(event: str, example: dict) -> None:
    from shared.contracts.registry import EVENT_TYPES

    EVENT_TYPES[event].model_validate(example)


def release_problems(
    service: str,
    *,
    root: Path = REPO,
    generate: Callable[[str], str] | None = None,
    current: Mapping[str, tuple[int, dict]] | None = None,
) -> list[Problem]:
    """Everything that stops `service` from being released: its committed AsyncAPI document
    stale, its published event versions broken, or a consumer (another service, or itself)
    reading a field its producer does not send — evaluated with what `service`'s code generates
    now and the other services' committed documents. `generate(service)` returns the document's
    JSON (default: the real service's, in a subprocess). Services without event contracts
    (gateway, web): nothing to check."""
    if service not in SERVICES:
        return []
    if generate is None:
        from shared.platform.asyncapi import generate_in_subprocess

        generate = generate_in_subprocess
    committed = committed_documents(root)
    generated = json.loads(generate(service))
    problems = [] if generated == committed.get(service) else [Problem(
        "stale",
        f"services/{service}/asyncapi.json is stale (not what the code generates): "
        f"python -m shared.platform.asyncapi write {service}, review the diff, commit",
    )]
    now = {**committed, service: generated}
    problems += consumer_breaks(now, producer=service)
    problems += schema_problems(
        service, root=root, current=current, documents=committed,
        parse_example=_parse_with_model if current is None else None,
    )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    status = 0
    for service in args.services:
        for problem in release_problems(service):
            print(f"{service}: {problem}")
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
