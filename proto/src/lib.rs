//! OllyStack's protobuf messages and the OTLP types the rest of the workspace
//! uses.
//!
//! * [`store`]: records a node writes to disk (WAL entries, archived session
//!   segments), compiled from `proto/ollystack/v1/store.proto` by protox at
//!   build time (no system `protoc`).
//! * [`otlp`]: the OpenTelemetry protocol types and tonic services, re-exported
//!   from `opentelemetry-proto` so every crate agrees on one version.

/// Records a node writes to disk.
pub mod store {
    include!(concat!(env!("OUT_DIR"), "/ollystack.v1.rs"));
}

pub mod wire;

/// OpenTelemetry protocol types (OTLP/gRPC services and messages).
pub use opentelemetry_proto::tonic as otlp;
