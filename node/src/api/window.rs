//! Event-time windows in request bodies (`POST /api/v1/ai/rca` per
//! incident, `POST /api/v1/ai/analyze`), checked field by field.
//!
//! `start`, `end`, `baseline_start`, `baseline_end`: an RFC 3339 UTC time
//! (`"2025-01-31T10:00:00Z"`) or Unix nanoseconds (a JSON integer or a
//! string of digits), as the API's other event-time parameters
//! (`GET /api/v1/metrics/{name}/exemplars?start=&end=`). `start` is
//! inclusive, `end` exclusive. The baseline is optional (both bounds or
//! neither); by default it is the window of the same length right before
//! `start`. A window is at most [`WINDOW_NS_MAX`] long.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{params, ApiError};
use crate::query::format_rfc3339_nanos;
use crate::rca::incident::{WindowQuery, KEYS_MAX_DEFAULT, SESSIONS_MAX_DEFAULT};

/// Longest window accepted: 7 days.
pub const WINDOW_NS_MAX: u64 = 7 * 24 * 3_600 * 1_000_000_000;

/// The two windows of a request, Unix ns, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub start: u64,
    pub end: u64,
    pub baseline_start: u64,
    pub baseline_end: u64,
    /// The request named the baseline (else: the window right before).
    pub baseline_given: bool,
}

/// The windows as they are echoed in answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowView {
    pub start: String,
    pub end: String,
    pub baseline_start: String,
    pub baseline_end: String,
    /// `given` or `previous_window` (same length, right before `start`).
    pub baseline: &'static str,
}

impl Windows {
    pub fn view(&self) -> WindowView {
        WindowView {
            start: format_rfc3339_nanos(self.start),
            end: format_rfc3339_nanos(self.end),
            baseline_start: format_rfc3339_nanos(self.baseline_start),
            baseline_end: format_rfc3339_nanos(self.baseline_end),
            baseline: if self.baseline_given { "given" } else { "previous_window" },
        }
    }

    /// The incident window's and the baseline's session queries.
    pub fn queries(&self) -> (WindowQuery, WindowQuery) {
        let q = |start, end| WindowQuery {
            start_unix_nano: start,
            end_unix_nano: end,
            sessions_max: SESSIONS_MAX_DEFAULT,
            keys_max: KEYS_MAX_DEFAULT,
        };
        (q(self.start, self.end), q(self.baseline_start, self.baseline_end))
    }
}

/// The body as a JSON object, or 400.
pub fn object(body: &[u8], expected: &str) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: not JSON: {e}")))?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::bad_request(format!("body: must be a JSON object with {expected}"))),
    }
}

/// 400 naming the first field not in `allowed`.
pub fn only(fields: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!("body: unknown field {}", params::quoted(unknown)))),
        None => Ok(()),
    }
}

/// The windows of a body (see the module doc); other fields are the caller's to check.
pub fn windows(fields: &Map<String, Value>) -> Result<Windows, ApiError> {
    let start = time(fields, "start")?.ok_or_else(|| ApiError::bad_request("body: start is missing"))?;
    let end = time(fields, "end")?.ok_or_else(|| ApiError::bad_request("body: end is missing"))?;
    check_length("start", "end", start, end)?;
    let (baseline_start, baseline_end, baseline_given) = match (time(fields, "baseline_start")?, time(fields, "baseline_end")?) {
        (Some(bs), Some(be)) => {
            check_length("baseline_start", "baseline_end", bs, be)?;
            (bs, be, true)
        }
        (None, None) => {
            let length = end - start;
            let bs = start.checked_sub(length).ok_or_else(|| {
                ApiError::bad_request("body: start is too close to 1970 for a default baseline; give baseline_start and baseline_end")
            })?;
            (bs, start, false)
        }
        (Some(_), None) => return Err(ApiError::bad_request("body: baseline_start needs baseline_end")),
        (None, Some(_)) => return Err(ApiError::bad_request("body: baseline_end needs baseline_start")),
    };
    Ok(Windows { start, end, baseline_start, baseline_end, baseline_given })
}

fn check_length(start_name: &str, end_name: &str, start: u64, end: u64) -> Result<(), ApiError> {
    if end <= start {
        return Err(ApiError::bad_request(format!("body: {end_name} must be after {start_name}")));
    }
    if end - start > WINDOW_NS_MAX {
        return Err(ApiError::bad_request(format!("body: {start_name}..{end_name} is longer than 7 days")));
    }
    Ok(())
}

fn time(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    let bad =
        |shown: &str| ApiError::bad_request(format!("{name} {}: must be an RFC 3339 UTC time or Unix nanoseconds", params::quoted(shown)));
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(bad(text)),
        Some(Value::String(text)) => params::event_time(name, Some(text)),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| bad(&n.to_string())),
        Some(other) => Err(bad(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Windows, String> {
        let Value::Object(fields) = v else { panic!("object") };
        windows(&fields).map_err(|e| e.message)
    }

    const T: u64 = 1_700_000_000_000_000_000;
    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn rfc3339_and_nanos_and_default_baseline() {
        let w = parse(json!({"start": "2023-11-14T22:13:20Z", "end": T + HOUR})).expect("valid");
        assert_eq!((w.start, w.end, w.baseline_start, w.baseline_end, w.baseline_given), (T, T + HOUR, T - HOUR, T, false));
        let w = parse(json!({"start": T.to_string(), "end": T + 10, "baseline_start": 5, "baseline_end": 9})).expect("valid");
        assert_eq!((w.baseline_start, w.baseline_end, w.baseline_given), (5, 9, true));
        assert_eq!(w.view().baseline, "given");
        assert_eq!(parse(json!({"start": T, "end": T + HOUR})).expect("valid").view().start, "2023-11-14T22:13:20.000000000Z");
    }

    #[test]
    fn bad_windows_name_the_field() {
        for (body, named) in [
            (json!({"end": T}), "start is missing"),
            (json!({"start": T}), "end is missing"),
            (json!({"start": T, "end": T}), "end must be after start"),
            (json!({"start": "yesterday", "end": T}), "start \"yesterday\""),
            (json!({"start": -5, "end": T}), "start \"-5\""),
            (json!({"start": T, "end": true}), "end \"true\""),
            (json!({"start": T, "end": T + 8 * 24 * HOUR}), "longer than 7 days"),
            (json!({"start": T, "end": T + 1, "baseline_start": T}), "baseline_start needs baseline_end"),
            (json!({"start": T, "end": T + 1, "baseline_start": 9, "baseline_end": 3}), "baseline_end must be after baseline_start"),
            (json!({"start": 10, "end": 100}), "too close to 1970"),
        ] {
            let err = parse(body.clone()).expect_err("rejected");
            assert!(err.contains(named), "{body}: {err}");
        }
    }
}
