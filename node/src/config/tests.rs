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

#[test]
fn limits_are_off_by_default_and_read_from_the_table() {
    assert!(ConfigFile::default().build_and_validate().expect("valid").limits.is_none());
    let f =
        ConfigFile::from_toml("[limits]\nwindow_ms = 1000\nlease_units = 8\n[limits.attributes]\n\"http.route\" = 5\n").expect("parses");
    let limits = f.build_and_validate().expect("valid").limits.expect("limits on");
    assert_eq!((limits.window_ms(), limits.lease_units(), limits.limit("http.route")), (1000, 8, Some(5)));
}

#[test]
fn limit_errors_name_the_key() {
    let err = |toml: &str| ConfigFile::from_toml(toml).expect("parses").build_and_validate().expect_err("invalid").to_string();
    let e = err("[limits]\nwindow_ms = 0\n");
    assert!(e.contains("limits.window_ms") && e.contains("\"0\""), "{e}");
    let e = err("[limits]\nlease_units = 0\n[limits.attributes]\na = 1\n");
    assert!(e.contains("limits.lease_units"), "{e}");
    let e = err("[limits.attributes]\n\"http.route\" = 0\n");
    assert!(e.contains("limits.attributes") && e.contains("http.route = 0"), "{e}");
    let e = err("[limits.attributes]\n\"\" = 3\n");
    assert!(e.contains("limits.attributes"), "{e}");
}

#[test]
fn limits_attributes_override_parses_a_list() {
    let parsed: AttributeLimits = "http.route=5, user.id = 1000".parse().expect("parses");
    assert_eq!(parsed.0.get("http.route"), Some(&5));
    assert_eq!(parsed.0.get("user.id"), Some(&1000));
    assert!("http.route".parse::<AttributeLimits>().is_err());
    assert!("a=1,a=2".parse::<AttributeLimits>().is_err());
    let mut f = ConfigFile::default();
    Overrides { limits_attributes: Some(parsed), limits_lease_units: Some(4), ..Default::default() }.apply(&mut f);
    let limits = f.build_and_validate().expect("valid").limits.expect("limits on");
    assert_eq!((limits.lease_units(), limits.limit("user.id")), (4, Some(1000)));
}

#[test]
fn llm_is_off_by_default_and_validated() {
    assert_eq!(ConfigFile::default().build_and_validate().expect("valid").llm, None);
    let on = ConfigFile::from_toml("[llm]\nprovider = \"ollama\"\nmodel = \"llama3\"\n").expect("parses");
    let llm = on.build_and_validate().expect("valid").llm.expect("on");
    assert_eq!((llm.provider, llm.url.as_str(), llm.timeout.as_millis()), (crate::llm::Provider::Ollama, "http://127.0.0.1:11434", 10_000));
    let o = Overrides {
        llm_provider: Some("openai".into()),
        llm_url: Some("http://gw:8000/".into()),
        llm_model: Some("m".into()),
        ..Default::default()
    };
    let mut f = ConfigFile::default();
    o.apply(&mut f);
    assert_eq!(f.build_and_validate().expect("valid").llm.map(|l| l.url), Some("http://gw:8000".to_owned()));
    for (toml, key) in [
        ("[llm]\nprovider = \"gpt\"\n", "llm.provider"),
        ("[llm]\nprovider = \"openai\"\n", "llm.model"),
        ("[llm]\nprovider = \"anthropic\"\nmodel = \"c\"\n", "llm.api_key"),
        ("[llm]\nprovider = \"openai\"\nmodel = \"m\"\nurl = \"ftp://x\"\n", "llm.url"),
        ("[llm]\nprovider = \"ollama\"\nmodel = \"m\"\ntimeout_ms = 0\n", "llm.timeout_ms"),
    ] {
        let err = ConfigFile::from_toml(toml).expect("parses").build_and_validate().expect_err(toml).to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    assert!(ConfigFile::from_toml("[llm]\nkey = \"x\"\n").expect_err("unknown key").contains("key"));
}

#[test]
fn the_cluster_port_beyond_loopback_needs_tls_or_insecure() {
    let mut f = ConfigFile::default();
    assert!(f.listen.cluster.starts_with("127.0.0.1:"), "the default stays on loopback");
    f.listen.api = "0.0.0.0:8080".into();
    let err = f.clone().build_and_validate().expect_err("open API port").to_string();
    assert!(err.contains("listen.api") && err.contains("--insecure"), "{err}");
    f.listen.api = "127.0.0.1:8080".into();
    f.listen.cluster = "0.0.0.0:4320".into();
    let err = f.clone().build_and_validate().expect_err("open cluster port").to_string();
    assert!(err.contains("listen.cluster") && err.contains("--insecure") && err.contains("ollystack-node certs"), "{err}");
    f.insecure = true;
    assert!(f.clone().build_and_validate().expect("insecure on purpose").cluster.tls.is_none());
    f.insecure = false;
    f.tls = super::file::TlsCfg { cert_file: "n.pem".into(), key_file: "n-key.pem".into(), ca_file: "ca.pem".into() };
    assert!(f.clone().build_and_validate().expect("with TLS").cluster.tls.is_some());
    f.tls.ca_file = PathBuf::new();
    let err = f.build_and_validate().expect_err("two of three").to_string();
    assert!(err.contains("tls.ca_file"), "{err}");
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write");
    let mut f = ConfigFile::default();
    f.cluster.join_token_file = token.clone();
    let c = f.clone().build_and_validate().expect("token from a file");
    assert_eq!(c.cluster.join_token.expose(), "s3cret-token");
    assert!(!format!("{c:?}").contains("s3cret"), "Debug shows the token");
    f.cluster.join_token = "inline".into();
    let err = f.clone().build_and_validate().expect_err("both").to_string();
    assert!(err.contains("cluster.join_token_file") && !err.contains("inline"), "{err}");
    f.cluster.join_token = Default::default();
    f.cluster.join_token_file = dir.path().join("missing");
    let err = f.build_and_validate().expect_err("unreadable").to_string();
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn client_ports_beyond_loopback_need_tls_and_tokens_or_insecure() {
    let mut f = ConfigFile::default();
    f.listen.otlp_http = "0.0.0.0:4318".into();
    f.auth.tokens_file = "tokens.toml".into();
    let err = f.clone().build_and_validate().expect_err("tokens without TLS").to_string();
    assert!(err.contains("listen.otlp_http") && err.contains("client_tls"), "{err}");
    f.client_tls = super::file::ClientTlsCfg { cert_file: "n.pem".into(), key_file: "n-key.pem".into() };
    let c = f.clone().build_and_validate().expect("TLS and tokens");
    assert!(c.access.is_secure());
    f.auth.tokens_file = PathBuf::new();
    assert!(f.clone().build_and_validate().is_err(), "TLS without tokens");
    f.client_tls.key_file = PathBuf::new();
    f.listen.otlp_http = "127.0.0.1:4318".into();
    let err = f.build_and_validate().expect_err("half of client_tls").to_string();
    assert!(err.contains("client_tls.key_file"), "{err}");
}

#[test]
fn ingest_attribute_limits_default_to_the_spec_and_read_the_table() {
    let c = ConfigFile::default().build_and_validate().expect("valid");
    assert_eq!(c.attr_limits, crate::ingest::AttrLimits::default());
    // `[limits] attributes` (cardinality) and `[ingest]` live side by side.
    let text = "[limits.attributes]\n\"http.route\" = 5\n[ingest]\nattribute_count_limit = 0\nattribute_value_length_limit = 10\n";
    let mut f = ConfigFile::from_toml(text).expect("parses");
    Overrides { span_event_count_limit: Some(3), ..Default::default() }.apply(&mut f);
    let c = f.build_and_validate().expect("valid");
    assert_eq!((c.attr_limits.attribute_count_limit, c.attr_limits.attribute_value_length_limit), (0, 10));
    assert_eq!(c.attr_limits.span_event_count_limit, 3);
    assert!(c.limits.is_some());
}

#[test]
fn ingest_attribute_limit_errors_name_the_key() {
    for (text, key) in [
        ("[ingest]\nattribute_value_length_limit = 0\n", "ingest.attribute_value_length_limit"),
        ("[ingest]\nattribute_value_depth_limit = 65\n", "ingest.attribute_value_depth_limit"),
        ("[ingest]\nlog_body_length_limit = 0\n", "ingest.log_body_length_limit"),
    ] {
        let err = ConfigFile::from_toml(text).expect("parses").build_and_validate().expect_err(key).to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = ConfigFile::from_toml("[ingest]\nattribute_count = 5\n").expect_err("unknown key");
    assert!(err.contains("attribute_count"), "{err}");
}
