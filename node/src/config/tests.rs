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
