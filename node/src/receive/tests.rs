//! Tests of the OTLP receivers.
