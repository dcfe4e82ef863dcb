//! Event-time conversions for API answers: Unix nanoseconds ⇄ RFC 3339 (UTC,
//! nanosecond precision), via `humantime`. No clock is read here.

use std::time::{Duration, UNIX_EPOCH};

/// Formats Unix nanoseconds as RFC 3339 in UTC with nine fractional digits,
/// e.g. `2023-11-14T22:13:20.000000000Z`. Every `u64` is in range (the
/// largest is in year 2554), and the fixed width makes the strings sort in
/// time order.
pub fn format_rfc3339_nanos(unix_nano: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(unix_nano)).to_string()
}

/// Parses an RFC 3339 UTC timestamp (`Z` suffix, optional fraction) into
/// Unix nanoseconds. `None` for malformed text and for times before 1970 or
/// after the `u64` nanosecond range.
pub fn parse_rfc3339_nanos(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since_epoch.as_nanos()).ok()
}

/// Nanoseconds as fractional milliseconds (durations in answers).
pub fn nanos_to_ms(nanos: u64) -> f64 {
    nanos as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_nanoseconds() {
        assert_eq!(format_rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(format_rfc3339_nanos(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(format_rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    #[test]
    fn parse_inverts_format() {
        for nanos in [0, 1, 1_700_000_000_123_456_789, u64::MAX] {
            assert_eq!(parse_rfc3339_nanos(&format_rfc3339_nanos(nanos)), Some(nanos));
        }
        assert_eq!(parse_rfc3339_nanos("2023-11-14T22:13:20Z"), Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn parse_rejects_garbage_and_pre_epoch() {
        assert_eq!(parse_rfc3339_nanos("yesterday"), None);
        assert_eq!(parse_rfc3339_nanos(""), None);
        assert_eq!(parse_rfc3339_nanos("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn nanos_to_ms_keeps_fractions() {
        assert_eq!(nanos_to_ms(1_500_000), 1.5);
    }
}
