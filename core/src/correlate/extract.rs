//! Finding the explicit correlation ID a signal carries, before validation.
//!
//! Precedence, first hit wins: resource attribute → signal attribute →
//! header attributes in order → baggage member (signal, then resource) →
//! for logs only, a field of a structured body. Empty values do not count.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

use super::{attr, baggage, settings::CorrelationSettings};
use crate::model::IdSource;

/// Largest string log body parsed as JSON, in bytes. Bigger bodies are not
/// searched (their ID then comes from the trace); a log line this large is
/// not a structured event with a top-level ID field.
const JSON_BODY_BYTES_MAX: usize = 64 * 1024;

/// An explicit ID found on a signal, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The value as found (percent-decoded for baggage), not yet validated.
    pub raw: String,
    /// Where it was found; always an explicit source.
    pub source: IdSource,
}

/// The explicit ID of a span.
pub fn span_candidate(s: &CorrelationSettings, resource_attrs: &[KeyValue], span_attrs: &[KeyValue]) -> Option<Candidate> {
    attribute_candidate(s, resource_attrs, span_attrs)
}

/// The explicit ID of a log record: as for spans, then its body.
pub fn log_candidate(
    s: &CorrelationSettings,
    resource_attrs: &[KeyValue],
    log_attrs: &[KeyValue],
    body: Option<&AnyValue>,
) -> Option<Candidate> {
    attribute_candidate(s, resource_attrs, log_attrs).or_else(|| {
        let raw = body_field(&s.log_body_fields, body?)?;
        Some(Candidate { raw, source: IdSource::LogBody })
    })
}

/// The explicit ID of a metric exemplar (its filtered attributes are the
/// signal attributes).
pub fn exemplar_candidate(s: &CorrelationSettings, resource_attrs: &[KeyValue], labels: &[KeyValue]) -> Option<Candidate> {
    attribute_candidate(s, resource_attrs, labels)
}

/// The precedence shared by every signal, up to baggage.
fn attribute_candidate(s: &CorrelationSettings, resource: &[KeyValue], signal: &[KeyValue]) -> Option<Candidate> {
    let found = |raw: String, source| Some(Candidate { raw, source });
    if let Some(raw) = attr::find(resource, &s.attribute).and_then(attr::scalar_text) {
        return found(raw, IdSource::ResourceAttribute);
    }
    if let Some(raw) = attr::find(signal, &s.attribute).and_then(attr::scalar_text) {
        return found(raw, IdSource::SpanAttribute);
    }
    let header = s.header_attributes.iter().filter_map(|name| attr::find(signal, name)).find_map(|value| attr::strings(value).next());
    if let Some(raw) = header {
        return found(raw.to_owned(), IdSource::Header);
    }
    let raw = baggage::lookup(&s.baggage_attributes, &s.baggage_member, [signal, resource])?;
    found(raw, IdSource::Baggage)
}

/// The first of `fields` present as a string or number in a structured
/// body: a JSON object in a string, or a key-value list.
fn body_field(fields: &[String], body: &AnyValue) -> Option<String> {
    match body.value.as_ref()? {
        Value::StringValue(text) => {
            if text.len() > JSON_BODY_BYTES_MAX || !text.trim_start().starts_with('{') {
                return None;
            }
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
            fields.iter().find_map(|field| match object.get(field)? {
                serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        }
        Value::KvlistValue(list) => fields.iter().find_map(|field| attr::find(&list.values, field).and_then(attr::scalar_text)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "extract_test.rs"]
mod tests;
