//! OTLP export requests (traces, logs) as encoded protobuf, scanned for what
//! routing by trace home needs without decoding the whole request: each
//! item's trace ID and, when asked, the attributes a tenant is read from.
//!
//! The scan walks only the layers down to each item (span, log record) and,
//! inside an item, its trace ID and, when asked, its attributes; everything
//! else is skipped by its length. So a body the scan takes may still fail a
//! full decode: the node that decodes it (the trace's home) rejects it then.
//! Anything the scan is unsure of (a group, a known field with an unexpected
//! wire type, bad framing) is an error, and the caller decodes in full.

use std::ops::Range;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// Field numbers of one signal's export request, per layer.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Of an item: its trace ID (bytes).
    trace_id: u32,
    /// Of an item: its attributes (repeated `KeyValue`).
    attributes: u32,
}

/// Field numbers shared by both signals: the request's resources, a
/// resource wrapper's `Resource` and scopes, a scope wrapper's items.
const REQUEST_RESOURCES: u32 = 1;
const RESOURCE_RESOURCE: u32 = 1;
const RESOURCE_SCOPES: u32 = 2;
const SCOPE_ITEMS: u32 = 2;
/// The wire type of a length-delimited field (messages, bytes, strings).
const WIRE_LEN: u8 = 2;

/// `ExportTraceServiceRequest`: spans, `Span.trace_id = 1`, `Span.attributes = 9`.
pub const TRACES: Layout = Layout { trace_id: 1, attributes: 9 };
/// `ExportLogsServiceRequest`: log records, `LogRecord.trace_id = 9`, `LogRecord.attributes = 6`.
pub const LOGS: Layout = Layout { trace_id: 9, attributes: 6 };

/// Why a body could not be scanned (decode it in full to say why exactly).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not scannable as an otlp request: {0}")]
pub struct ScanError(&'static str);

/// A scanned request: its resource wrappers, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Scanned {
    pub resources: Vec<ScannedResource>,
}

/// One resource wrapper (`ResourceSpans`, `ResourceLogs`).
#[derive(Debug, Default, PartialEq)]
pub struct ScannedResource {
    /// The resource's attributes, decoded only when asked.
    pub attributes: Vec<KeyValue>,
    /// The items of all its scopes, in order.
    pub items: Vec<ScannedItem>,
}

/// One item (span, log record).
#[derive(Debug, Default, PartialEq)]
pub struct ScannedItem {
    /// The value of its last trace ID field (the one a decode keeps).
    trace_id: Option<Range<usize>>,
    /// Its attributes, decoded only when asked.
    pub attributes: Vec<KeyValue>,
}

impl ScannedItem {
    /// The item's trace ID bytes as a decode would see them (empty when absent).
    pub fn trace_id<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        self.trace_id.clone().map_or(&[], |r| &body[r])
    }
}

/// One field as found: its number, wire type and, for a length-delimited
/// one, its value.
struct Field {
    number: u32,
    wire_type: u8,
    value: Range<usize>,
}

/// Reads a varint at `*at` (prost's reader, so it agrees with a decode),
/// advancing it.
fn varint(body: &[u8], at: &mut usize) -> Result<u64, ScanError> {
    let mut rest = body.get(*at..).ok_or(ScanError("truncated varint"))?;
    let value = prost::encoding::decode_varint(&mut rest).map_err(|_| ScanError("invalid varint"))?;
    *at = body.len() - rest.len();
    Ok(value)
}

/// The fields of the message in `body[within]`, in order.
fn fields(body: &[u8], within: Range<usize>) -> impl Iterator<Item = Result<Field, ScanError>> + '_ {
    let end = within.end;
    let mut at = within.start;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= end {
            return None;
        }
        let field = next_field(&body[..end], &mut at);
        failed = field.is_err();
        Some(field)
    })
}

/// The field starting at `*at`, advancing past it.
fn next_field(body: &[u8], at: &mut usize) -> Result<Field, ScanError> {
    let key = varint(body, at)?;
    let number = u32::try_from(key >> 3).map_err(|_| ScanError("field key beyond 32 bits"))?;
    if number == 0 {
        return Err(ScanError("field number 0"));
    }
    let wire_type = (key & 7) as u8;
    let value_start;
    match wire_type {
        0 => {
            value_start = *at;
            varint(body, at)?;
        }
        1 | 5 => {
            let width = if wire_type == 1 { 8 } else { 4 };
            value_start = *at;
            *at = at.checked_add(width).filter(|e| *e <= body.len()).ok_or(ScanError("truncated fixed-width value"))?;
        }
        WIRE_LEN => {
            let len = varint(body, at)?;
            value_start = *at;
            let len = usize::try_from(len).map_err(|_| ScanError("length beyond memory"))?;
            *at = at.checked_add(len).filter(|e| *e <= body.len()).ok_or(ScanError("length past the end of its message"))?;
        }
        _ => return Err(ScanError("group or unknown wire type")),
    }
    Ok(Field { number, wire_type, value: value_start..*at })
}

/// A message-typed field's value, or an error if it is not length-delimited.
fn message(field: &Field) -> Result<Range<usize>, ScanError> {
    match field.wire_type {
        WIRE_LEN => Ok(field.value.clone()),
        _ => Err(ScanError("a message field that is not length-delimited")),
    }
}

fn decode_key_value(body: &[u8], value: Range<usize>) -> Result<KeyValue, ScanError> {
    KeyValue::decode(&body[value]).map_err(|_| ScanError("undecodable attribute"))
}

/// Scans an encoded export request of `layout`'s signal. `attributes`: also
/// decode each resource's and item's attributes (a tenant is read from them).
pub fn scan(body: &[u8], layout: Layout, attributes: bool) -> Result<Scanned, ScanError> {
    let mut out = Scanned::default();
    for field in fields(body, 0..body.len()) {
        let field = field?;
        // Other top-level fields are unknown to a decode too: ignored.
        if field.number == REQUEST_RESOURCES {
            out.resources.push(scan_resource(body, message(&field)?, layout, attributes)?);
        }
    }
    Ok(out)
}

fn scan_resource(body: &[u8], within: Range<usize>, layout: Layout, attributes: bool) -> Result<ScannedResource, ScanError> {
    let mut out = ScannedResource::default();
    for field in fields(body, within) {
        let field = field?;
        match field.number {
            RESOURCE_SCOPES => scan_scope(body, message(&field)?, layout, attributes, &mut out.items)?,
            RESOURCE_RESOURCE if attributes => {
                // Occurrences merge: their attributes append.
                let resource = Resource::decode(&body[message(&field)?]).map_err(|_| ScanError("undecodable resource"))?;
                out.attributes.extend(resource.attributes);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn scan_scope(body: &[u8], within: Range<usize>, layout: Layout, attributes: bool, items: &mut Vec<ScannedItem>) -> Result<(), ScanError> {
    for field in fields(body, within) {
        let field = field?;
        if field.number == SCOPE_ITEMS {
            items.push(scan_item(body, message(&field)?, layout, attributes)?);
        }
    }
    Ok(())
}

fn scan_item(body: &[u8], within: Range<usize>, layout: Layout, attributes: bool) -> Result<ScannedItem, ScanError> {
    let mut out = ScannedItem::default();
    for field in fields(body, within) {
        let field = field?;
        if field.number == layout.trace_id {
            if field.wire_type != WIRE_LEN {
                return Err(ScanError("a trace ID that is not length-delimited"));
            }
            out.trace_id = Some(field.value);
        } else if field.number == layout.attributes {
            let value = message(&field)?;
            if attributes {
                out.attributes.push(decode_key_value(body, value)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "encoded_test.rs"]
mod tests;
