//! Tests of the semantic-convention migration.

use super::super::attr::test_util::*;
use super::*;
use proptest::prelude::*;

fn keys(attrs: &[KeyValue]) -> Vec<&str> {
    attrs.iter().map(|kv| kv.key.as_str()).collect()
}

fn value<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    super::super::attr::find(attrs, key)
}

#[test]
fn deprecated_names_are_renamed_in_place() {
    let mut attrs = vec![
        kvs("http.method", "GET"),
        kv("http.status_code", i(200)),
        kvs("other", "x"),
        kvs("db.name", "shop"),
        kvs("net.peer.name", "db.local"),
        kv("net.peer.port", i(5432)),
        kvs("http.url", "https://a/b"),
        kvs("http.scheme", "https"),
    ];
    let seen = migrate_attributes(&mut attrs);
    assert_eq!(
        keys(&attrs),
        [
            "http.request.method",
            "http.response.status_code",
            "other",
            "db.namespace",
            "server.address",
            "server.port",
            "url.full",
            "url.scheme"
        ]
    );
    assert_eq!(value(&attrs, "http.response.status_code"), Some(&i(200)));
    assert_eq!(seen, ["http.method", "http.status_code", "http.url", "http.scheme", "db.name", "net.peer.name", "net.peer.port"]);
}

#[test]
fn stable_values_win_over_deprecated_ones() {
    let mut attrs = vec![kvs("http.method", "POST"), kvs("http.request.method", "GET")];
    assert_eq!(migrate_attributes(&mut attrs), ["http.method"]);
    assert_eq!(attrs, vec![kvs("http.request.method", "GET")]);
}

#[test]
fn current_attributes_are_untouched() {
    let mut attrs = vec![kvs("http.request.method", "GET"), kvs("db.system", "postgresql")];
    let before = attrs.clone();
    assert!(migrate_attributes(&mut attrs).is_empty());
    assert_eq!(attrs, before);
}

#[test]
fn db_statement_is_renamed_and_scrubbed() {
    let mut attrs = vec![kvs("db.statement", "SELECT * FROM t WHERE id = 42")];
    assert_eq!(migrate_attributes(&mut attrs), ["db.statement"]);
    assert_eq!(attrs, vec![kvs("db.query.text", "SELECT * FROM t WHERE id = ?")]);
}

#[test]
fn existing_query_text_is_scrubbed_and_wins() {
    let mut attrs = vec![kvs("db.query.text", "SELECT 'a'"), kvs("db.statement", "SELECT 'b'")];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kvs("db.query.text", "SELECT ?")]);
}

#[test]
fn route_like_targets_become_routes() {
    for path in ["/api/users", "/users/{id}/orders", "/users/:id", "/", "/v2/items"] {
        let mut attrs = vec![kvs("http.target", path)];
        assert_eq!(migrate_attributes(&mut attrs), ["http.target"]);
        assert_eq!(attrs, vec![kvs("http.route", path)], "{path}");
    }
}

#[test]
fn concrete_targets_become_url_path_and_query() {
    let mut attrs = vec![kvs("a", "1"), kvs("http.target", "/users/123?tab=2&x=y"), kvs("b", "2")];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kvs("a", "1"), kvs("url.path", "/users/123"), kvs("url.query", "tab=2&x=y"), kvs("b", "2")]);

    let mut attrs = vec![kvs("http.target", "/search?")];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kvs("url.path", "/search")]);

    for path in ["/o/550e8400-e29b-41d4-a716-446655440000", "/blob/0123456789abcdef0123", "*"] {
        let mut attrs = vec![kvs("http.target", path)];
        migrate_attributes(&mut attrs);
        assert_eq!(attrs, vec![kvs("url.path", path)], "{path}");
    }
}

#[test]
fn target_keeps_existing_stable_attributes() {
    let mut attrs = vec![kvs("http.route", "/users/{id}"), kvs("http.target", "/users/7?a=b"), kvs("url.path", "/p")];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kvs("http.route", "/users/{id}"), kvs("url.query", "a=b"), kvs("url.path", "/p")]);

    let mut attrs = vec![kvs("http.route", "/x"), kvs("http.target", "/x")];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kvs("http.route", "/x")]);
}

#[test]
fn non_string_target_becomes_url_path() {
    let mut attrs = vec![kv("http.target", i(5))];
    migrate_attributes(&mut attrs);
    assert_eq!(attrs, vec![kv("url.path", i(5))]);
}

#[test]
fn identifier_segments_are_recognized() {
    assert!(looks_like_id("12345"));
    assert!(looks_like_id("550E8400-E29B-41D4-A716-446655440000"));
    assert!(looks_like_id("deadbeefdeadbeef"));
    assert!(!looks_like_id("deadbeef"));
    assert!(!looks_like_id("v2"));
    assert!(!looks_like_id(""));
    assert!(!is_route_like("users/1"));
}

fn deprecated_key() -> impl Strategy<Value = String> {
    let names: Vec<&str> =
        RENAMES.iter().flat_map(|(old, new)| [*old, *new]).chain([HTTP_TARGET, HTTP_ROUTE, URL_PATH, URL_QUERY, "other"]).collect();
    prop::sample::select(names).prop_map(str::to_owned)
}

proptest! {
    #[test]
    fn migration_is_idempotent_and_leaves_no_deprecated_name(
        pairs in prop::collection::vec((deprecated_key(), "[/a-z0-9?=]{0,12}"), 0..8),
    ) {
        let mut attrs: Vec<KeyValue> = pairs.iter().map(|(k, v)| kvs(k, v)).collect();
        migrate_attributes(&mut attrs);
        for (old, _) in RENAMES {
            prop_assert!(!has(&attrs, old));
        }
        prop_assert!(!has(&attrs, HTTP_TARGET));
        let once = attrs.clone();
        prop_assert!(migrate_attributes(&mut attrs).is_empty());
        prop_assert_eq!(attrs, once);
    }
}
