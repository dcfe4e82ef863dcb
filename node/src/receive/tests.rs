//! Tests of the OTLP receivers: the pure codec, both receivers end to end
//! against a recording sink, and the OpenTelemetry SDK exporters as clients.

mod codec;
mod fixtures;
mod grpc;
mod http;
mod sdk;
