use super::*;

#[test]
fn defaults_validate() {
    let c = ConfigFile::default().build_and_validate().expect("defaults are valid");
    assert_eq!(c.otlp_grpc_addr.port(), 4317);
    assert_eq!(c.otlp_http_addr.port(), 4318);
    assert_eq!(c.api_addr.port(), 8080);
    assert_eq!(c.correlation.max_id_length, 100);
}

#[test]
fn unknown_keys_are_rejected() {
    let err = ConfigFile::from_toml("[session]\nidle_timeout = 5\n").expect_err("unknown key");
    assert!(err.contains("idle_timeout"), "{err}");
}

#[test]
fn errors_name_key_and_value() {
    let mut f = ConfigFile::from_toml("[session]\nidle_timeout_ms = 0\n").expect("parses");
    let err = f.clone().build_and_validate().expect_err("zero timeout").to_string();
    assert!(err.contains("session.idle_timeout_ms") && err.contains("\"0\""), "{err}");
    f.session.idle_timeout_ms = 10;
    f.listen.api = "nowhere".into();
    let err = f.build_and_validate().expect_err("bad addr").to_string();
    assert!(err.contains("listen.api") && err.contains("nowhere"), "{err}");
}

#[test]
fn overrides_replace_file_values() {
    let mut f = ConfigFile::from_toml("data_dir = \"/a\"\n[session]\nmax_spans = 5\n").expect("parses");
    let o = Overrides { max_spans: Some(7), trusted_prefixes: Some(vec!["req-".into()]), ..Default::default() };
    o.apply(&mut f);
    let c = f.build_and_validate().expect("valid");
    assert_eq!(c.finish.max_spans, 7);
    assert_eq!(c.data_dir, std::path::PathBuf::from("/a"));
    assert_eq!(c.correlation.trusted_prefixes, vec!["req-".to_owned()]);
}
