//! Checks of path and query parameters. Every error names the parameter and
//! the value it got (quoted and cut to a bounded length).

use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};

use super::ApiError;
use crate::model::{CorrelationId, TraceId};
use crate::query::parse_rfc3339_nanos;

/// Default `limit` of list routes.
pub const LIMIT_DEFAULT: usize = 50;
/// Largest `limit` accepted.
pub const LIMIT_MAX: usize = crate::query::LIMIT_MAX;
/// Longest metric or service name accepted, in bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// Longest value echoed back in an error message, in characters.
const ECHO_CHARS_MAX: usize = 64;

/// A value for an error message: quoted, escaped, at most
/// [`ECHO_CHARS_MAX`] characters (then `…`).
pub fn quoted(value: &str) -> String {
    let mut cut: String = value.chars().take(ECHO_CHARS_MAX).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// The path parameters, or 400 (e.g. a segment that is not UTF-8).
pub fn path<T>(extracted: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    extracted.map(|Path(value)| value).map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// The query parameters, or 400 (e.g. an unknown parameter).
pub fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    extracted.map(|Query(value)| value).map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// A correlation ID from a path: 1..=`max_len` bytes of `[A-Za-z0-9_-]`,
/// the form every stored ID has. Checked before any lookup.
pub fn correlation_id(raw: &str, max_len: usize) -> Result<CorrelationId, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("correlation id {}: {why}", quoted(raw)));
    if raw.is_empty() {
        return Err(bad("is empty"));
    }
    if raw.len() > max_len {
        return Err(bad(&format!("is longer than {max_len} bytes")));
    }
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("may only contain A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(CorrelationId::from_trusted(raw))
}

/// A trace ID from a path: 32 hex digits, not all zero.
pub fn trace_id(raw: &str) -> Result<TraceId, ApiError> {
    if raw.len() != 32 {
        return Err(ApiError::bad_request(format!("trace id {}: must be 32 hex digits", quoted(raw))));
    }
    TraceId::from_hex(raw).ok_or_else(|| ApiError::bad_request(format!("trace id {}: must be 32 hex digits, not all zero", quoted(raw))))
}

/// `limit`: [`LIMIT_DEFAULT`] when absent, else 1..=[`LIMIT_MAX`].
pub fn limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(LIMIT_DEFAULT);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=LIMIT_MAX).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!("limit {}: must be an integer from 1 to {LIMIT_MAX}", quoted(raw)))),
    }
}

/// A session page from `offset` (default 0) and `limit` (1 to
/// [`crate::query::PAGE_LIMIT_MAX`], which is also the default).
pub fn page(offset: Option<&str>, limit: Option<&str>) -> Result<crate::query::Page, ApiError> {
    use crate::query::PAGE_LIMIT_MAX;
    let offset = match offset {
        None => 0,
        Some(raw) => {
            raw.parse::<u64>().map_err(|_| ApiError::bad_request(format!("offset {}: must be a non-negative integer", quoted(raw))))?
        }
    };
    let limit = match limit {
        None => PAGE_LIMIT_MAX,
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("limit {}: must be an integer from 1 to {PAGE_LIMIT_MAX}", quoted(raw)))),
        },
    };
    Ok(crate::query::Page { offset, limit })
}

/// `value` percent-encoded for a query string (RFC 3986: all but the
/// unreserved characters), for `next` links that repeat a caller's values.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A name parameter (`service`, metric name): absent or empty is `None`,
/// else at most [`NAME_BYTES_MAX`] bytes.
pub fn name(param: &str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(text) if text.len() > NAME_BYTES_MAX => {
            Err(ApiError::bad_request(format!("{param} {}: is longer than {NAME_BYTES_MAX} bytes", quoted(text))))
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// `since` as node-clock Unix ms: an RFC 3339 time, or a duration before
/// `now_unix_ms` such as `15m`, `2h`, `1h 30m` (humantime syntax).
pub fn since(raw: Option<&str>, now_unix_ms: u64) -> Result<Option<u64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ago) = humantime::parse_duration(raw) {
        return Ok(Some(now_unix_ms.saturating_sub(duration_ms(ago))));
    }
    parse_rfc3339_nanos(raw)
        .map(|nanos| Some(nanos / 1_000_000))
        .ok_or_else(|| ApiError::bad_request(format!("since {}: must be an RFC 3339 UTC time or a duration like 15m", quoted(raw))))
}

/// An event-time bound (`start`, `end`) as Unix ns: an RFC 3339 UTC time or
/// an integer of Unix nanoseconds.
pub fn event_time(param: &str, raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<u64>()
        .ok()
        .or_else(|| parse_rfc3339_nanos(raw))
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("{param} {}: must be an RFC 3339 UTC time or Unix nanoseconds", quoted(raw))))
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_checked() {
        assert_eq!(correlation_id("order-42_x", 100).map(|id| id.to_string()), Ok("order-42_x".to_owned()));
        for bad in ["", "a b", "a/b", "ä", "x;drop", "a.b"] {
            assert!(correlation_id(bad, 100).is_err(), "{bad:?} accepted");
        }
        assert!(correlation_id(&"a".repeat(101), 100).is_err());
        assert!(correlation_id(&"a".repeat(100), 100).is_ok());
    }

    #[test]
    fn trace_ids_are_32_hex_digits() {
        assert!(trace_id(&"ab".repeat(16)).is_ok());
        assert!(trace_id(&"AB".repeat(16)).is_ok());
        for bad in ["", "abc", &"0".repeat(32), &"zz".repeat(16), &"ab".repeat(17)] {
            assert!(trace_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(limit(None), Ok(LIMIT_DEFAULT));
        assert_eq!(limit(Some("1000")), Ok(1000));
        for bad in ["0", "1001", "-1", "ten", ""] {
            let err = limit(Some(bad)).expect_err("rejected");
            assert!(err.message.starts_with(&format!("limit {bad:?}")), "{}", err.message);
        }
    }

    #[test]
    fn since_is_relative_to_the_node_clock_or_absolute() {
        let now = 10 * 3_600_000;
        assert_eq!(since(Some("15m"), now), Ok(Some(now - 15 * 60_000)));
        assert_eq!(since(Some("2h"), now), Ok(Some(now - 2 * 3_600_000)));
        assert_eq!(since(Some("100h"), now), Ok(Some(0)));
        assert_eq!(since(Some("2023-11-14T22:13:20.5Z"), now), Ok(Some(1_700_000_000_500)));
        assert_eq!(since(None, now), Ok(None));
        let err = since(Some("last tuesday"), now).expect_err("rejected");
        assert!(err.message.contains("since \"last tuesday\""), "{}", err.message);
    }

    #[test]
    fn event_times_take_rfc3339_or_nanos() {
        assert_eq!(event_time("start", Some("1700000000000000000")), Ok(Some(1_700_000_000_000_000_000)));
        assert_eq!(event_time("start", Some("2023-11-14T22:13:20Z")), Ok(Some(1_700_000_000_000_000_000)));
        assert!(event_time("end", Some("soon")).expect_err("rejected").message.starts_with("end \"soon\""));
    }

    #[test]
    fn names_are_bounded_and_echoes_cut() {
        assert_eq!(name("service", Some("")), Ok(None));
        assert_eq!(name("service", Some("api")), Ok(Some("api".to_owned())));
        let long = "s".repeat(NAME_BYTES_MAX + 1);
        let err = name("service", Some(&long)).expect_err("rejected");
        assert!(err.message.len() < 200, "echo is bounded: {}", err.message);
        assert_eq!(quoted("a\"b"), r#""a\"b""#);
    }
}
