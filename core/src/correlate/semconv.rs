//! Migration of deprecated semantic-convention attribute names to the
//! stable ones, so sessions and queries see one name per concept.
//!
//! A deprecated attribute is renamed in place unless its stable name is
//! already present; then the stable value wins and the deprecated one is
//! dropped. `db.system` → `db.system.name` is not migrated: several of its
//! values changed too (`mssql` → `microsoft.sql_server`, ...), so a rename
//! alone would be wrong.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

use super::sql::scrub_sql_literals;

/// Plain renames: (deprecated, stable).
const RENAMES: &[(&str, &str)] = &[
    ("http.method", "http.request.method"),
    ("http.status_code", "http.response.status_code"),
    ("http.url", "url.full"),
    ("http.scheme", "url.scheme"),
    ("db.statement", "db.query.text"),
    ("db.name", "db.namespace"),
    ("net.peer.name", "server.address"),
    ("net.peer.port", "server.port"),
];

/// Deprecated request target: a route when route-like, else a URL path.
const HTTP_TARGET: &str = "http.target";
const HTTP_ROUTE: &str = "http.route";
const URL_PATH: &str = "url.path";
const URL_QUERY: &str = "url.query";
const DB_QUERY_TEXT: &str = "db.query.text";

/// Hex runs at least this long are identifiers (hashes, object IDs).
const HEX_ID_CHARS_MIN: usize = 16;

/// Migrates deprecated attribute names in place; returns the deprecated names seen (for a metric).
pub fn migrate_attributes(attrs: &mut Vec<KeyValue>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for &(old, new) in RENAMES {
        if rename(attrs, old, new) {
            seen.push(old);
        }
    }
    if migrate_target(attrs) {
        seen.push(HTTP_TARGET);
    }
    for kv in attrs.iter_mut().filter(|kv| kv.key == DB_QUERY_TEXT) {
        if let Some(Value::StringValue(text)) = kv.value.as_mut().and_then(|v| v.value.as_mut()) {
            *text = scrub_sql_literals(text);
        }
    }
    seen
}

fn has(attrs: &[KeyValue], key: &str) -> bool {
    attrs.iter().any(|kv| kv.key == key)
}

/// Renames `old` to `new` (or drops it when `new` exists); true if `old`
/// was present.
fn rename(attrs: &mut Vec<KeyValue>, old: &str, new: &str) -> bool {
    let Some(at) = attrs.iter().position(|kv| kv.key == old) else {
        return false;
    };
    if !has(attrs, new) {
        attrs[at].key = new.to_owned();
    }
    // Drops the deprecated value when the stable one won, and duplicates of
    // the deprecated key (invalid OTLP) after the first.
    attrs.retain(|kv| kv.key != old);
    true
}

/// Migrates `http.target`: to `http.route` when route-like, else to
/// `url.path` (and `url.query`). True if `http.target` was present.
fn migrate_target(attrs: &mut Vec<KeyValue>) -> bool {
    let Some(at) = attrs.iter().position(|kv| kv.key == HTTP_TARGET) else {
        return false;
    };
    let removed = attrs.remove(at);
    attrs.retain(|kv| kv.key != HTTP_TARGET);
    let target = match removed.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        // Not a string: nothing sensible to split; keep it under its stable path name.
        _ => {
            if !has(attrs, URL_PATH) {
                attrs.insert(at, KeyValue { key: URL_PATH.to_owned(), ..removed });
            }
            return true;
        }
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.as_str(), None),
    };
    let mut added = Vec::new();
    if query.is_none() && is_route_like(path) {
        added.push((HTTP_ROUTE, path));
    } else {
        added.push((URL_PATH, path));
        added.extend(query.filter(|q| !q.is_empty()).map(|q| (URL_QUERY, q)));
    }
    let added: Vec<KeyValue> = added.into_iter().filter(|(key, _)| !has(attrs, key)).map(|(key, value)| string_kv(key, value)).collect();
    let at = at.min(attrs.len());
    attrs.splice(at..at, added);
    true
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Value::StringValue(value.to_owned())) }), ..Default::default() }
}

/// A path with no segment that looks like an identifier: all digits, a
/// UUID, or a run of at least 16 hex characters. Templates such as
/// `/users/{id}` or `/users/:id` are route-like.
pub(crate) fn is_route_like(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(looks_like_id)
}

fn looks_like_id(segment: &str) -> bool {
    let all = |pred: fn(&u8) -> bool| !segment.is_empty() && segment.bytes().all(|c| pred(&c));
    let is_uuid = segment.len() == 36
        && segment.bytes().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() });
    all(u8::is_ascii_digit) || is_uuid || (segment.len() >= HEX_ID_CHARS_MIN && all(u8::is_ascii_hexdigit))
}

#[cfg(test)]
#[path = "semconv_test.rs"]
mod tests;
