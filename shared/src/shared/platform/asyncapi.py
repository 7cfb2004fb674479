"""Each service's AsyncAPI 3 document, generated from its FastStream broker.

What a service consumes is the broker's subscribers (one per `EventConsumer`, wired by
`ServiceRuntime.consume`), each receiving the envelopes of the event types its handlers take.
What it publishes goes out through the outbox relay, not a FastStream publisher, so the runtime
declares it on the broker as publishers (`declare_publishers`): one per topic the service owns
(a topic's first segment names its producer: identity.members.v1 is identity's), sending the
envelopes of every event of shared/contracts on that topic. Payload schemas are the contracts'
own models, wrapped in the envelope (`event_type` and `schema_version` fixed per message).

The document is committed as services/<name>/asyncapi.json, served by the service at
GET /asyncapi.json (internal: the gateway forwards only /api/ to the services), and checked by
shared/tests/test_asyncapi.py to be what the code generates:
    python -m shared.platform.asyncapi write identity notifications documents claims
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import Field, TypeAdapter, create_model

from shared.contracts.envelope import Envelope, Event
from shared.contracts.registry import EVENT_TYPES

if TYPE_CHECKING:
    from shared.platform.app import ServiceRuntime

REPO = Path(__file__).resolve().parents[4]
SERVICES = ("identity", "notifications", "documents", "claims")
SCHEMA_REF = "#/components/schemas/{model}"


@functools.cache
def message_model(event_cls: type[Event]) -> type[Envelope]:
    """The envelope as it travels for one event type: the payload is that event."""
    return create_model(
        f"{event_cls.__name__}Message",
        __base__=Envelope,
        __doc__=event_cls.__doc__,
        event_type=(Literal[event_cls.event_type], ...),  # type: ignore[valid-type]
        schema_version=(Literal[event_cls.schema_version], ...),  # type: ignore[valid-type]
        payload=(event_cls, ...),
    )


def messages_of(event_classes: list[type[Event]]) -> Any:
    models = tuple(message_model(c) for c in sorted(event_classes, key=lambda c: c.event_type))
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="event_type")]  # noqa: UP007


def owned_topics(service: str) -> dict[str, list[type[Event]]]:
    """The topics a service produces, with the events of shared/contracts on each."""
    owned: dict[str, list[type[Event]]] = {}
    for cls in EVENT_TYPES.values():
        if cls.topic.split(".", 1)[0] == service:
            owned.setdefault(cls.topic, []).append(cls)
    return owned


def declare_publishers(broker: KafkaBroker, service: str) -> None:
    """Publishers for the document only: the outbox relay does the sending."""
    for topic, classes in sorted(owned_topics(service).items()):
        broker.publisher(
            topic,
            title=f"{topic}:send",
            description=f"Written by {service}'s outbox relay, keyed by member id, after the state change commits.",
            schema=messages_of(classes),
        )


def document(runtime: ServiceRuntime, *, title: str, version: str) -> dict[str, Any]:
    spec = AsyncAPI(runtime.broker, title=title, version=version, description=runtime.settings.service_name).to_specification()
    doc = spec.to_jsonable()
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    # Subscribers: the runner's handler takes the raw message (it parks what it cannot read in the
    # dead-letter topic), so FastStream sees no payload type; give it the events it handles.
    for runner in runtime.consumers:
        consumer = runner.consumer
        classes = [cls for cls, _ in consumer.handlers.values()]
        adapter = TypeAdapter(messages_of(classes))
        payload = adapter.json_schema(ref_template=SCHEMA_REF)
        schemas.update(payload.pop("$defs", {}))
        name = f"{consumer.name}:Payload"
        schemas[name] = payload | {"title": name}
        for key, message in components.get("messages", {}).items():
            if key.startswith(f"{consumer.name}:"):
                message["payload"] = {"$ref": SCHEMA_REF.format(model=name)}
        # One topic: FastStream names the operation and the channel after the group; several
        # topics: one each, "<group>:<topic>" (and "<group>:<topic>Subscribe" for the operation).
        def ours(key: str) -> bool:
            return key == consumer.name or key.startswith(f"{consumer.name}:")

        for key, operation in doc["operations"].items():
            if ours(key) and operation.get("action") == "receive":
                operation["bindings"] = {
                    "kafka": {"bindingVersion": "0.4.0", "groupId": {"type": "string", "enum": [consumer.name]}}
                }
        for key, channel in doc["channels"].items():
            if ours(key) and not key.endswith(":send"):
                channel["description"] = (
                    f"Consumer group {consumer.name}: handles {', '.join(sorted(c.event_type for c in classes))}; "
                    f"other event types are skipped; what fails its retries goes to <topic>.dlq."
                )
    schemas.pop("EmptyPayload", None)
    # Where Kafka is depends on the deployment: the document names the setting, not a host.
    prefix = runtime.settings.model_config.get("env_prefix", "")
    doc["servers"] = {
        "kafka": {
            "host": "kafka:9092",
            "protocol": "kafka",
            "description": f"The Kafka bootstrap of the deployment ({prefix}KAFKA_BOOTSTRAP).",
        }
    }
    for section in ("channels",):
        for channel in doc.get(section, {}).values():
            channel["servers"] = [{"$ref": "#/servers/kafka"}]
    return json.loads(json.dumps(doc, sort_keys=True))


def render(service: str) -> str:
    """The document one service serves at GET /asyncapi.json, as committed (imports its app:
    one service per process). The lifespan is not run: nothing connects."""
    from fastapi.testclient import TestClient

    app = importlib.import_module(f"{service}.main").app
    response = TestClient(app).get("/asyncapi.json")
    response.raise_for_status()
    return json.dumps(response.json(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def committed_path(service: str) -> Path:
    return REPO / "services" / service / "asyncapi.json"


def generate_in_subprocess(service: str) -> str:
    # Service apps share SQLModel's metadata: one app per interpreter.
    out = subprocess.run(
        [sys.executable, "-m", "shared.platform.asyncapi", "print", service],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["print", "write"])
    parser.add_argument("services", nargs="*", default=list(SERVICES))
    args = parser.parse_args()
    if args.action == "print":
        (service,) = args.services
        sys.stdout.write(render(service))
        return
    for service in args.services:
        committed_path(service).write_text(generate_in_subprocess(service), encoding="utf-8")
        print(f"wrote {committed_path(service).relative_to(REPO)}")


if __name__ == "__main__":
    main()
