//! Tests of the OTLP receivers: the pure codec, both receivers end to end
//! against a recording sink, and the OpenTelemetry SDK exporters as clients.

// A test fails by panicking: unwrapping is how these tests say "must be Ok".
#![allow(clippy::unwrap_used)]

mod codec;
mod fixtures;
mod grpc;
mod http;
mod sdk;
