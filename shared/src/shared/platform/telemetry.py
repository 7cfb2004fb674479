"""OpenTelemetry tracing. Spans are always made (so trace context travels through Kafka);
they are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set, or written as JSON lines to
`$ESPACE_TRACE_DIR/<service>.jsonl` (local runs and tests, which check spans hold no secret)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

_configured = False


def _iso(ns: int | None) -> str:
    # The SDK's format (microseconds, "Z"); isoformat costs half of strftime.
    if not ns:
        return "null"
    return '"' + datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds")[:-6] + 'Z"'


def _context(context) -> str:
    state = json.dumps(repr(context.trace_state)) if context.trace_state else '"[]"'
    return f'{{"trace_id": "0x{context.trace_id:032x}", "span_id": "0x{context.span_id:016x}", "trace_state": {state}}}'


def _attributes(attributes) -> str:
    return json.dumps(dict(attributes)) if attributes is not None else "null"


class JsonLinesSpanExporter(SpanExporter):
    """Spans as JSON lines, with the fields and formats of the SDK's `ReadableSpan.to_json` (what
    the tests and whoever reads the files expect). That one re-serialises and re-parses the
    resource for every span and formats times with strftime: a tenth of the gateway's CPU under
    load. Here the resource, the same for every span, is encoded once, and the fixed-format
    parts (ids, times, kind) are written as they are; names and attributes go through json."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._resources: dict[int, tuple[Resource, str]] = {}

    def _resource(self, resource: Resource) -> str:
        known = self._resources.get(id(resource))
        if known is None or known[0] is not resource:
            known = (resource, json.dumps({"attributes": dict(resource.attributes), "schema_url": resource.schema_url}))
            self._resources[id(resource)] = known
        return known[1]

    def line(self, span: ReadableSpan) -> str:
        status = span.status
        status_text = (json.dumps({"status_code": status.status_code.name, "description": status.description})
                       if status.description else f'{{"status_code": "{status.status_code.name}"}}')
        events = ", ".join(
            f'{{"name": {json.dumps(e.name)}, "timestamp": {_iso(e.timestamp)}, "attributes": {_attributes(e.attributes)}}}'
            for e in span.events
        )
        links = ", ".join(
            f'{{"context": {_context(link.context)}, "attributes": {_attributes(link.attributes)}}}' for link in span.links
        )
        parent = f'"0x{span.parent.span_id:016x}"' if span.parent is not None else "null"
        return (
            f'{{"name": {json.dumps(span.name)}, "context": {_context(span.context) if span.context else "null"},'
            f' "kind": "{span.kind}", "parent_id": {parent}, "start_time": {_iso(span.start_time)},'
            f' "end_time": {_iso(span.end_time)}, "status": {status_text}, "attributes": {_attributes(span.attributes)},'
            f' "events": [{events}], "links": [{links}], "resource": {self._resource(span.resource)}}}\n'
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.out.write("".join(self.line(span) for span in spans))
        self.out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.out.flush()


def setup_telemetry(service: str) -> None:
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if trace_dir := os.environ.get("ESPACE_TRACE_DIR"):
        os.makedirs(trace_dir, exist_ok=True)
        out = open(os.path.join(trace_dir, f"{service}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115 (process-long)
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(out)))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """W3C traceparent/tracestate of the current span, for a Kafka message."""
    propagate.inject(headers)
    return headers


def extract_trace_context(headers: dict[str, str]):
    return propagate.extract(headers)
