//! Tests of `validate`: one per rule, then properties.

use super::*;
use proptest::prelude::*;

fn settings() -> CorrelationSettings {
    CorrelationSettings::default()
}

fn rejected(raw: &str) -> Option<RejectReason> {
    match validate(&settings(), raw) {
        Validated::Rejected(reason) => Some(reason),
        _ => None,
    }
}

fn id(text: &str) -> CorrelationId {
    CorrelationId::from_trusted(text)
}

/// The invariants of every ID that validation lets through.
fn check_clean(s: &CorrelationSettings, id: &CorrelationId) -> Result<(), String> {
    let text = id.as_str();
    if text.is_empty() || text.len() > s.max_id_length {
        return Err(format!("bad length {}", text.len()));
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("bad character in {text:?}"));
    }
    Ok(())
}

#[test]
fn clean_external_ids_are_accepted_as_is() {
    for raw in ["abc-123_XYZ", "550e8400-e29b-41d4-a716-446655440000", "a"] {
        assert_eq!(validate(&settings(), raw), Validated::Accepted(id(raw)));
    }
}

#[test]
fn other_characters_are_replaced_and_whitespace_trimmed() {
    assert_eq!(validate(&settings(), "req:42/a.b"), Validated::Sanitized(id("req_42_a_b")));
    assert_eq!(validate(&settings(), "  abc "), Validated::Sanitized(id("abc")));
    assert_eq!(validate(&settings(), "café"), Validated::Sanitized(id("caf_")));
}

#[test]
fn empty_and_blank_ids_are_rejected() {
    assert_eq!(rejected(""), Some(RejectReason::Empty));
    assert_eq!(rejected("   "), Some(RejectReason::Empty));
}

#[test]
fn long_ids_are_rejected_by_byte_length() {
    let s = settings();
    assert!(matches!(validate(&s, &"a".repeat(100)), Validated::Accepted(_)));
    assert_eq!(rejected(&"a".repeat(101)), Some(RejectReason::TooLong { len: 101, max: 100 }));
    // 34 three-byte characters are 102 bytes.
    assert_eq!(rejected(&"€".repeat(34)), Some(RejectReason::TooLong { len: 102, max: 100 }));
}

#[test]
fn huge_ids_are_rejected_quickly() {
    let huge = "x".repeat(5 * 1024 * 1024);
    let started = std::time::Instant::now();
    assert!(matches!(rejected(&huge), Some(RejectReason::TooLong { .. })));
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn control_bytes_are_rejected() {
    for raw in ["a\0b", "abc\n", "\tabc", "a\x1bb", "a\x7fb"] {
        assert_eq!(rejected(raw), Some(RejectReason::ControlBytes), "{raw:?}");
    }
}

#[test]
fn injection_patterns_are_rejected_with_their_name() {
    let cases = [
        ("<SCRIPT>alert(1)", "script_tag"),
        ("JavaScript:alert", "javascript_uri"),
        ("a/../../etc", "path_traversal"),
        ("a..\\b", "path_traversal"),
        ("%2E%2E%2f", "path_traversal"),
        ("${jndi:ldap}", "template_expression"),
        ("{{7*7}}", "template_expression"),
        ("x' OR '1'='1", "sql_tautology"),
        ("abc--", "sql_comment"),
        ("a/*b*/", "sql_comment"),
        ("a;drop", "statement_separator"),
        ("1 UNION  SELECT pw", "sql_union"),
        ("1 union\u{a0}select", "sql_union"),
        ("a%00b", "encoded_nul"),
        ("a\\u0000b", "encoded_nul"),
        ("a%0D%0Ab", "encoded_line_break"),
    ];
    for (raw, name) in cases {
        assert_eq!(rejected(raw), Some(RejectReason::Injection(name)), "{raw:?}");
    }
    // Words alone are fine.
    assert_eq!(rejected("reunion-selection"), None);
    assert_eq!(rejected("unionselect"), None);
}

#[test]
fn olly_ids_must_match_the_strict_format() {
    let good = "olly-lz3kq8a0-1a2b3c4d";
    assert_eq!(validate(&settings(), good), Validated::Accepted(id(good)));
    for bad in ["olly-LZ3-1a2b3c4d", "olly-x-1a2b", "olly-", "olly-abc-1a2b3c4d_x"] {
        assert_eq!(rejected(bad), Some(RejectReason::BadOllyFormat), "{bad}");
    }
    // Other capitalizations are external IDs.
    assert_eq!(validate(&settings(), "OLLY-x"), Validated::Accepted(id("OLLY-x")));
}

#[test]
fn trusted_prefixes_restrict_external_ids_only() {
    let s = CorrelationSettings { trusted_prefixes: vec!["acme-".into(), "req_".into()], ..settings() };
    assert_eq!(validate(&s, "acme-1"), Validated::Accepted(id("acme-1")));
    assert_eq!(validate(&s, "req_2"), Validated::Accepted(id("req_2")));
    assert_eq!(validate(&s, "evil-1"), Validated::Rejected(RejectReason::UntrustedPrefix));
    assert_eq!(validate(&s, "olly-a-00000000"), Validated::Accepted(id("olly-a-00000000")));
}

#[test]
fn reasons_have_snake_case_labels() {
    let all = [
        RejectReason::Empty,
        RejectReason::TooLong { len: 1, max: 0 },
        RejectReason::ControlBytes,
        RejectReason::Injection("x"),
        RejectReason::BadOllyFormat,
        RejectReason::UntrustedPrefix,
    ];
    let labels: Vec<_> = all.iter().map(RejectReason::as_str).collect();
    assert_eq!(labels, ["empty", "too_long", "control_bytes", "injection", "bad_olly_format", "untrusted_prefix"]);
}

proptest! {
    #[test]
    fn validate_never_panics_and_output_is_clean(raw in any::<String>()) {
        let s = settings();
        if let Validated::Accepted(id) | Validated::Sanitized(id) = validate(&s, &raw) {
            prop_assert!(check_clean(&s, &id).is_ok(), "{:?}", check_clean(&s, &id));
        }
    }

    #[test]
    fn validate_handles_ids_near_the_limit(raw in "[ -~\u{80}-\u{10ffff}]{90,110}") {
        let s = settings();
        if let Validated::Accepted(id) | Validated::Sanitized(id) = validate(&s, &raw) {
            prop_assert!(check_clean(&s, &id).is_ok());
        }
    }

    #[test]
    fn accepted_output_validates_to_itself(raw in any::<String>()) {
        let s = settings();
        if let Validated::Accepted(id) | Validated::Sanitized(id) = validate(&s, &raw) {
            prop_assert_eq!(validate(&s, id.as_str()), Validated::Accepted(id.clone()));
        }
    }

    #[test]
    fn sanitize_is_idempotent(raw in any::<String>()) {
        let once = sanitize(&raw).into_owned();
        prop_assert!(matches!(sanitize(&once), Cow::Borrowed(_)));
        prop_assert!(once.len() <= raw.len());
    }
}

proptest! {
    // Few cases: each one allocates megabytes.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn huge_inputs_are_rejected(prefix in ".{0,20}", len in 101usize..6_000_000) {
        let raw = format!("{prefix}{}", "x".repeat(len));
        let too_long = matches!(validate(&settings(), &raw), Validated::Rejected(RejectReason::TooLong { .. }));
        prop_assert!(too_long);
    }
}

#[test]
fn forwarded_keys_must_be_what_intake_makes() {
    assert!(is_intake_key(100, "default", "order-123"));
    assert!(is_intake_key(100, "acme", "olly-2bv5b34j7r-11363e27"));
    for (tenant, id) in [("../../etc", "order-1"), ("acme", "a/b"), ("acme", ""), ("", "x"), ("acme", "x\n"), ("acme", &"x".repeat(101))] {
        assert!(!is_intake_key(100, tenant, id), "{tenant:?} {id:?}");
    }
}
