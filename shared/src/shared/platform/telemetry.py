"""OpenTelemetry tracing. Spans are always made (so trace context travels through Kafka);
they are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set, or written as JSON lines to
`$ESPACE_TRACE_DIR/<service>.jsonl` (local runs and tests, which check spans hold no secret)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

_configured = False


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
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(out, provider.resource)))
    trace.set_tracer_provider(provider)
    _configured = True


def _iso(ns: int | None) -> str | None:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ns else None


def _context(context: trace.SpanContext) -> dict[str, str]:
    return {"trace_id": f"0x{context.trace_id:032x}", "span_id": f"0x{context.span_id:016x}",
            "trace_state": repr(context.trace_state)}


class JsonLinesExporter(SpanExporter):
    """One JSON line per span, in the layout of the SDK's `ReadableSpan.to_json`, for about half
    its CPU: that one serialises and re-parses the process's resource for every span, which
    made the file exporter ~15 % of a service's CPU under load. The resource is written once
    here and spliced into each line."""

    def __init__(self, out: TextIO, resource: Resource) -> None:
        self.out = out
        self._resource = json.dumps({"attributes": dict(resource.attributes), "schema_url": resource.schema_url})

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            status = {"status_code": span.status.status_code.name}
            if span.status.description:
                status["description"] = span.status.description
            line = json.dumps({
                "name": span.name,
                "context": _context(span.context) if span.context else None,
                "kind": str(span.kind),
                "parent_id": f"0x{span.parent.span_id:016x}" if span.parent else None,
                "start_time": _iso(span.start_time),
                "end_time": _iso(span.end_time),
                "status": status,
                "attributes": dict(span.attributes) if span.attributes else {},
                "events": [{"name": e.name, "timestamp": _iso(e.timestamp), "attributes": dict(e.attributes or {})}
                           for e in span.events],
                "links": [{"context": _context(link.context), "attributes": dict(link.attributes or {})} for link in span.links],
            })
            lines.append(f"{line[:-1]}, \"resource\": {self._resource}}}\n")
        self.out.write("".join(lines))
        self.out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.out.flush()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """W3C traceparent/tracestate of the current span, for a Kafka message."""
    propagate.inject(headers)
    return headers


def extract_trace_context(headers: dict[str, str]):
    return propagate.extract(headers)
