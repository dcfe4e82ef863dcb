//! W3C baggage (`key1=value1;property,key2=value2`): finding one member in
//! the baggage headers that instrumentation records as attributes.
//!
//! Only what we need is parsed: list members are split on `,`, properties
//! after `;` are ignored, keys compared exactly after trimming optional
//! whitespace, and values percent-decoded.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::attr;

/// Most list members scanned in one baggage string. W3C asks propagators to
/// keep at least 64; anything beyond this bound is ignored.
const MEMBERS_MAX: usize = 180;

/// The percent-decoded, non-empty value of member `name` in one baggage
/// header string.
pub(crate) fn member(baggage: &str, name: &str) -> Option<String> {
    baggage
        .split(',')
        .take(MEMBERS_MAX)
        .filter_map(|item| {
            // Properties after ';' are metadata of the member, not its value.
            let head = item.split(';').next().unwrap_or_default();
            let (key, value) = head.split_once('=')?;
            (trim_ows(key) == name).then(|| percent_decode(trim_ows(value)))
        })
        .find(|value| !value.is_empty())
}

/// Looks for member `name` in the baggage attributes `attr_names` of each
/// attribute list of `layers`, in order (callers pass the signal's
/// attributes before the resource's).
pub(crate) fn lookup(attr_names: &[String], name: &str, layers: [&[KeyValue]; 2]) -> Option<String> {
    layers.into_iter().find_map(|attrs| {
        attr_names
            .iter()
            .filter_map(|attr_name| attr::find(attrs, attr_name))
            .flat_map(attr::strings)
            .find_map(|header| member(header, name))
    })
}

/// Optional whitespace of RFC 7230 (spaces and tabs).
fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are and bytes
/// that do not form UTF-8 become U+FFFD (validation then sanitizes them).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex_value(*hi).zip(hex_value(*lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push((hi << 4) | lo);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::attr::test_util::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn member_finds_the_named_member_and_ignores_properties() {
        let header = "userId=alice, correlation_id = abc%20def;ttl=5 ;x, other=1";
        assert_eq!(member(header, "correlation_id").as_deref(), Some("abc def"));
        assert_eq!(member(header, "userId").as_deref(), Some("alice"));
        assert_eq!(member(header, "missing"), None);
    }

    #[test]
    fn member_skips_empty_values_and_members_without_equals() {
        assert_eq!(member("id=,id=2", "id").as_deref(), Some("2"));
        assert_eq!(member("id,id", "id"), None);
        assert_eq!(member("", "id"), None);
    }

    #[test]
    fn member_keys_are_case_sensitive() {
        assert_eq!(member("ID=1", "id"), None);
    }

    #[test]
    fn percent_decode_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb%2fc"), "a/b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn lookup_prefers_the_signal_then_the_resource() {
        let names = vec!["baggage".to_owned(), "http.request.header.baggage".to_owned()];
        let resource = vec![kvs("baggage", "id=res")];
        let signal = vec![kv("http.request.header.baggage", arr(&["other=1", "id=sig"]))];
        assert_eq!(lookup(&names, "id", [&signal, &resource]).as_deref(), Some("sig"));
        assert_eq!(lookup(&names, "id", [&[], &resource]).as_deref(), Some("res"));
        assert_eq!(lookup(&names, "id", [&[], &[]]), None);
    }

    #[test]
    fn members_beyond_the_bound_are_ignored() {
        let mut header = "x=1,".repeat(MEMBERS_MAX);
        header.push_str("id=late");
        assert_eq!(member(&header, "id"), None);
    }

    proptest! {
        #[test]
        fn member_never_panics(header in ".{0,200}", name in "[a-z_]{1,10}") {
            let _ = member(&header, &name);
        }

        #[test]
        fn percent_decode_inverts_full_encoding(text in ".{0,50}") {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_decode(&encoded), text);
        }
    }
}
