"""OpenTelemetry tracing. Spans are always made (so trace context travels through Kafka);
they are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set, or written as JSON lines to
`$ESPACE_TRACE_DIR/<service>.jsonl` (local runs and tests, which check spans hold no secret)."""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

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
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        os.makedirs(trace_dir, exist_ok=True)
        out = open(os.path.join(trace_dir, f"{service}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115 (process-long)
        provider.add_span_processor(
            BatchSpanProcessor(ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n"))
        )
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
