//! Validation and sanitizing of explicit correlation IDs (untrusted input).
//!
//! Order of the checks, cheapest first: length (so a 5 MB value costs one
//! comparison), control bytes, emptiness after trimming, injection patterns,
//! then the strict `olly-` format or, for external IDs, trusted prefixes and
//! sanitizing to `[A-Za-z0-9_-]`.

use std::borrow::Cow;

use super::ids::{is_olly_id, OLLY_PREFIX};
use super::settings::CorrelationSettings;
use crate::model::CorrelationId;

/// The verdict on one raw ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validated {
    /// Used exactly as given.
    Accepted(CorrelationId),
    /// Used after trimming whitespace and replacing characters outside
    /// `[A-Za-z0-9_-]` by `_`.
    Sanitized(CorrelationId),
    /// Not used; the caller counts the reason and falls back.
    Rejected(RejectReason),
}

/// Why a raw ID was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Empty or only whitespace.
    #[error("correlation id is empty")]
    Empty,
    /// Longer than `max_id_length` bytes.
    #[error("correlation id is {len} bytes, more than the maximum {max}")]
    TooLong { len: usize, max: usize },
    /// Holds a control byte (below 0x20, or 0x7f), NUL included.
    #[error("correlation id holds a control byte")]
    ControlBytes,
    /// Matches an injection pattern; the payload names the pattern.
    #[error("correlation id matches injection pattern {0}")]
    Injection(&'static str),
    /// Starts with `olly-` but is not one of our IDs.
    #[error("correlation id starts with olly- but breaks its format")]
    BadOllyFormat,
    /// Starts with none of the trusted prefixes.
    #[error("correlation id starts with no trusted prefix")]
    UntrustedPrefix,
}

impl RejectReason {
    /// The snake_case label of the rejection metric.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong { .. } => "too_long",
            Self::ControlBytes => "control_bytes",
            Self::Injection(_) => "injection",
            Self::BadOllyFormat => "bad_olly_format",
            Self::UntrustedPrefix => "untrusted_prefix",
        }
    }
}

/// Injection patterns, matched case-insensitively anywhere in the ID, with
/// the name reported in [`RejectReason::Injection`]. An ID is a key, never
/// markup, a path, a template or SQL, so none of these has a legitimate use;
/// sanitizing would defuse most of them, but rejecting makes attacks visible
/// in the metric. `union select` is matched with any whitespace between.
const INJECTION_PATTERNS: &[(&str, &str)] = &[
    ("<script", "script_tag"),
    ("javascript:", "javascript_uri"),
    ("../", "path_traversal"),
    ("..\\", "path_traversal"),
    ("%2e%2e", "path_traversal"),
    ("${", "template_expression"),
    ("#{", "template_expression"),
    ("{{", "template_expression"),
    ("' or ", "sql_tautology"),
    ("--", "sql_comment"),
    ("/*", "sql_comment"),
    (";", "statement_separator"),
    ("%00", "encoded_nul"),
    ("\\u0000", "encoded_nul"),
    ("\\x00", "encoded_nul"),
    ("%0a", "encoded_line_break"),
    ("%0d", "encoded_line_break"),
];

/// Validates and sanitizes one raw ID.
pub fn validate(s: &CorrelationSettings, raw: &str) -> Validated {
    let text = match screen(raw, s.max_id_length) {
        Ok(text) => text,
        Err(reason) => return Validated::Rejected(reason),
    };
    if text.starts_with(OLLY_PREFIX) {
        if !is_olly_id(text) {
            return Validated::Rejected(RejectReason::BadOllyFormat);
        }
        return verdict(raw, Cow::Borrowed(text));
    }
    let trusted = s.trusted_prefixes.is_empty() || s.trusted_prefixes.iter().any(|p| text.starts_with(p.as_str()));
    if !trusted {
        return Validated::Rejected(RejectReason::UntrustedPrefix);
    }
    verdict(raw, sanitize(text))
}

/// Accepted when `clean` is `raw` unchanged, else Sanitized.
fn verdict(raw: &str, clean: Cow<'_, str>) -> Validated {
    let changed = matches!(clean, Cow::Owned(_)) || clean.len() != raw.len();
    let id = CorrelationId::from_trusted(clean.as_ref());
    if changed {
        Validated::Sanitized(id)
    } else {
        Validated::Accepted(id)
    }
}

/// The checks every external identifier (correlation ID or tenant) passes:
/// length, control bytes, emptiness, injection. Returns the trimmed text.
pub(crate) fn screen(raw: &str, max_len: usize) -> Result<&str, RejectReason> {
    if raw.len() > max_len {
        return Err(RejectReason::TooLong { len: raw.len(), max: max_len });
    }
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(RejectReason::ControlBytes);
    }
    let text = raw.trim();
    if text.is_empty() {
        return Err(RejectReason::Empty);
    }
    match injection(text) {
        Some(name) => Err(RejectReason::Injection(name)),
        None => Ok(text),
    }
}

/// The name of the first injection pattern found in `text`.
fn injection(text: &str) -> Option<&'static str> {
    // `text` is at most `max_id_length` bytes here, so this copy is bounded.
    let lower = text.to_ascii_lowercase();
    if let Some(&(_, name)) = INJECTION_PATTERNS.iter().find(|(pattern, _)| lower.contains(pattern)) {
        return Some(name);
    }
    let union_select = lower.match_indices("union").any(|(at, word)| {
        let after = &lower[at + word.len()..];
        let rest = after.trim_start();
        rest.len() < after.len() && rest.starts_with("select")
    });
    union_select.then_some("sql_union")
}

/// Replaces every character outside `[A-Za-z0-9_-]` by `_`. Borrowed when
/// nothing changed; never longer than its input; idempotent.
pub(crate) fn sanitize(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if allowed(c) { c } else { '_' }).collect())
}

/// Longest tenant ID, in bytes.
pub const TENANT_ID_BYTES_MAX: usize = 64;

/// The largest `correlation.max_id_length` a config may set.
pub const MAX_ID_LENGTH_LIMIT: usize = 1024;

/// Whether a session key that arrived from another node is one this
/// node's own intake could have made: a tenant and an ID that pass the
/// screening and need no sanitizing. Forwarded data gets no pass a
/// client's would not (a tenant `../../etc` did). Trusted prefixes are
/// not checked here: each node applied its own at intake. Pure.
pub fn is_intake_key(max_id_length: usize, tenant: &str, id: &str) -> bool {
    let clean = |text: &str, max: usize| screen(text, max).is_ok_and(|t| t == text && matches!(sanitize(t), Cow::Borrowed(_)));
    clean(tenant, TENANT_ID_BYTES_MAX) && clean(id, max_id_length)
}

#[cfg(test)]
#[path = "validate_test.rs"]
mod tests;
