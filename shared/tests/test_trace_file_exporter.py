"""The local trace files keep the SDK's JSON layout (what tests and people read) while the
exporter writes it for less CPU."""

from __future__ import annotations

import io
import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Status, StatusCode

from shared.platform.telemetry import JsonLinesSpanExporter


def test_each_line_is_the_sdk_json_of_its_span() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "identity"}))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /x", attributes={"http.status_code": 202, "espace.correlation_id": "c"}) as parent:
        with tracer.start_as_current_span("publish", links=[Link(parent.get_span_context(), {"why": "batch"})]) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "TimeoutError"))
    out = io.StringIO()
    JsonLinesSpanExporter(out).export([child, parent])

    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(span.to_json(indent=None)) for span in (child, parent)]
    assert json.loads(lines[0])["parent_id"] == f"0x{parent.get_span_context().span_id:016x}"
