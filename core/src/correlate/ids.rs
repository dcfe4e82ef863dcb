//! Our own correlation IDs: `olly-{base36}-{8 hex}`.
//!
//! Derived IDs are a pure function of a trace ID, so every span of a trace
//! gets the same ID on every node and in every batch. Generated IDs take the
//! time and the random number from the caller, which keeps this module pure.

use crate::model::{CorrelationId, TraceId};

/// Prefix of every ID we make; external IDs with it must match our format.
pub(crate) const OLLY_PREFIX: &str = "olly-";

/// Most base36 digits of a `u64` (`u64::MAX` is `3w5e11264sgsf`).
const BASE36_DIGITS_MAX: usize = 13;

/// Length of the hex part.
const HEX_DIGITS: usize = 8;

/// Derived ID: a pure function of the trace ID:
/// `olly-{base36 of the first 6 bytes as a big-endian u48}-{hex of the last 4 bytes}`.
pub fn derive_from_trace(trace: TraceId) -> CorrelationId {
    let b = trace.0;
    let high = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
    let id = format!("{OLLY_PREFIX}{}-{}", base36(high), hex::encode(&b[12..16]));
    debug_assert!(is_olly_id(&id), "derived id {id} breaks the olly format");
    CorrelationId::from_trusted(id)
}

/// Generated ID: `olly-{unix_ms in base36}-{random as 8 lowercase hex}`.
pub fn generate(now_unix_ms: u64, random: u32) -> CorrelationId {
    let id = format!("{OLLY_PREFIX}{}-{random:08x}", base36(now_unix_ms));
    debug_assert!(is_olly_id(&id), "generated id {id} breaks the olly format");
    CorrelationId::from_trusted(id)
}

/// How long one unscoped session of a service collects signals that belong
/// to no request (see [`unscoped`]).
pub const UNSCOPED_BUCKET_MS: u64 = 60_000;

/// The session of a signal that belongs to no request (no correlation ID,
/// no trace context): one per service and minute of arrival,
/// `olly-{base36 of the minute's start, Unix ms}-{FNV-1a of the service
/// name as 8 hex}`. The same on every node, so a cluster gathers a
/// service's context-free logs of one minute in one session.
pub fn unscoped(service: &str, now_unix_ms: u64) -> CorrelationId {
    let minute = now_unix_ms - now_unix_ms % UNSCOPED_BUCKET_MS;
    let hash = service.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let id = format!("{OLLY_PREFIX}{}-{hash:08x}", base36(minute));
    debug_assert!(is_olly_id(&id), "unscoped id {id} breaks the olly format");
    CorrelationId::from_trusted(id)
}

/// Strict format check: `olly-[0-9a-z]{1,13}-[0-9a-f]{8}`, nothing more.
pub fn is_olly_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(OLLY_PREFIX) else {
        return false;
    };
    let Some((time, random)) = rest.split_once('-') else {
        return false;
    };
    (1..=BASE36_DIGITS_MAX).contains(&time.len())
        && time.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        && random.len() == HEX_DIGITS
        && random.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// `n` in lowercase base36 (digits `0-9a-z`), without leading zeros.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; BASE36_DIGITS_MAX];
    let mut start = BASE36_DIGITS_MAX;
    loop {
        start -= 1;
        // `n % 36 < 36`, so the index is always in bounds.
        buf[start] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    buf[start..].iter().map(|&c| char::from(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base36_is_lowercase_without_leading_zeros() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
    }

    #[test]
    fn derive_uses_the_first_six_and_last_four_bytes() {
        let trace = TraceId::from_hex("000000000024ffffffffffff0a0b0c0d").expect("valid hex");
        // 0x24 = 36 = "10" in base36; the middle bytes do not matter.
        assert_eq!(derive_from_trace(trace).as_str(), "olly-10-0a0b0c0d");
        let other = TraceId::from_hex("00000000002400000000000a0a0b0c0d").expect("valid hex");
        assert_eq!(derive_from_trace(other), derive_from_trace(trace));
    }

    #[test]
    fn unscoped_ids_group_a_service_by_minute() {
        let a = unscoped("checkout", 120_000);
        assert_eq!(a, unscoped("checkout", 179_999), "the same minute");
        assert_ne!(a, unscoped("checkout", 180_000), "the next minute");
        assert_ne!(a, unscoped("cart", 120_000), "another service");
        assert!(is_olly_id(a.as_str()), "{a}");
        assert!(a.as_str().starts_with("olly-2klc-"), "{a}");
    }

    #[test]
    fn generate_formats_time_and_random() {
        assert_eq!(generate(0, 0).as_str(), "olly-0-00000000");
        assert_eq!(generate(1_700_000_000_000, 0xdead_beef).as_str(), "olly-loyw3v28-deadbeef");
    }

    #[test]
    fn is_olly_id_is_strict() {
        assert!(is_olly_id("olly-abc-0123abcd"));
        assert!(is_olly_id("olly-3w5e11264sgsf-ffffffff"));
        for bad in [
            "olly--0123abcd",
            "olly-abc-0123abc",
            "olly-abc-0123abcde",
            "olly-ABC-0123abcd",
            "olly-abc-0123ABCD",
            "olly-abc-0123abcg",
            "olly-abcdefghijklmn-0123abcd",
            "olly-abc-0123abcd-x",
            "olly-abc_0123abcd",
            "olly-abc",
            "xolly-abc-0123abcd",
            " olly-abc-0123abcd",
        ] {
            assert!(!is_olly_id(bad), "{bad} passed");
        }
    }

    proptest! {
        #[test]
        fn derive_is_deterministic_and_well_formed(bytes in any::<[u8; 16]>()) {
            let trace = TraceId(bytes);
            let id = derive_from_trace(trace);
            prop_assert!(is_olly_id(id.as_str()));
            prop_assert_eq!(id, derive_from_trace(TraceId(bytes)));
        }

        #[test]
        fn generate_is_well_formed(now in any::<u64>(), random in any::<u32>()) {
            prop_assert!(is_olly_id(generate(now, random).as_str()));
        }

        #[test]
        fn base36_round_trips(n in any::<u64>()) {
            prop_assert_eq!(u64::from_str_radix(&base36(n), 36).ok(), Some(n));
        }
    }
}
