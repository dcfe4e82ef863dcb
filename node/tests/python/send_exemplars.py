"""Sends a span and a histogram measurement recorded inside it through the
OpenTelemetry Python SDK's OTLP/HTTP exporters, so the metric carries an
exemplar pointing at the span. Prints the trace ID (hex) on stdout.

usage: send_exemplars.py ENDPOINT CORRELATION_ID
"""
import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def main() -> None:
    endpoint, correlation_id = sys.argv[1], sys.argv[2]
    resource = Resource.create({"service.name": "pricing"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer = tracer_provider.get_tracer("exemplar-test")
    histogram = meter_provider.get_meter("exemplar-test").create_histogram("pricing.latency", unit="ms")
    with tracer.start_as_current_span("price-quote", attributes={"correlation_id": correlation_id}) as span:
        histogram.record(42.5, {"route": "/quote"})
        trace_id = format(span.get_span_context().trace_id, "032x")
    meter_provider.force_flush()
    tracer_provider.force_flush()
    meter_provider.shutdown()
    tracer_provider.shutdown()
    print(trace_id)


if __name__ == "__main__":
    main()
