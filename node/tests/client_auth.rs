//! A node as a new user sets it up for clients on a real network: a
//! certificate from `ollystack-node certs` for its OTLP and API ports,
//! tokens from `ollystack-node token add`, tenancy on. Outside clients (the
//! OpenTelemetry Python SDK's HTTP and gRPC exporters, Python's HTTPS) then
//! try every way in (`tests/python/client_auth.py`): without a token, with
//! the wrong scope, plain HTTP on a TLS port, writing into another tenant
//! through an attribute, reading another tenant's sessions through a header
//! on every endpoint. Each must be refused while the right tokens work.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ollystack-node");
const IP: &str = "127.0.0.71";

fn run(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn token(file: &Path, name: &str, scopes: &str, tenant: Option<&str>) -> String {
    let file = file.display().to_string();
    let mut args = vec!["token", "add", "--file", &file, "--name", name, "--scopes", scopes];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    run(&args).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_right_tokens_get_in_over_tls() {
    let Ok(python) = std::env::var("OLLYSTACK_TEST_PYTHON") else {
        panic!("OLLYSTACK_TEST_PYTHON is not set: run the tests through ./scripts/test, which installs the Python OpenTelemetry SDK");
    };
    let root = tempfile::tempdir().expect("tempdir");
    let certs = root.path().join("certs");
    run(&["certs", "--out", &certs.display().to_string(), "--nodes", &format!("node-1={IP}")]);
    let tokens = root.path().join("tokens.toml");
    let ingest_acme = token(&tokens, "collector-acme", "ingest", Some("acme"));
    let read_acme = token(&tokens, "grafana-acme", "read", Some("acme"));
    let read_other = token(&tokens, "grafana-other", "read", Some("other"));
    let admin = token(&tokens, "ops", "admin", None);
    let listed = run(&["token", "list", "--file", &tokens.display().to_string()]);
    assert!(!listed.contains(&admin) && !std::fs::read_to_string(&tokens).expect("tokens").contains(&admin), "a token is kept hashed");

    let p = |f: &str| certs.join(f).display().to_string();
    let mut node = Command::new(BIN)
        .args(["start", "--data-dir", &root.path().join("data").display().to_string()])
        .args(["--listen-otlp-grpc", &format!("{IP}:4317"), "--listen-otlp-http", &format!("{IP}:4318")])
        .args(["--listen-api", &format!("{IP}:8080"), "--listen-cluster", &format!("{IP}:4320")])
        .args(["--client-tls-cert-file", &p("node-1.pem"), "--client-tls-key-file", &p("node-1-key.pem")])
        .args(["--auth-tokens-file", &tokens.display().to_string(), "--correlation-tenancy", "true"])
        .args(["--session-idle-timeout-ms", "60000", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if line.starts_with("ollystack-node ready:") {
                return;
            }
        }
        panic!("the node exited before it was ready");
    })
    .await
    .expect("ready in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_auth.py");
    let out = Command::new(python)
        .args([script, IP, &p("ca.pem")])
        .env("TOKEN_INGEST_ACME", &ingest_acme)
        .env("TOKEN_READ_ACME", &read_acme)
        .env("TOKEN_READ_OTHER", &read_other)
        .env("TOKEN_ADMIN", &admin)
        // requests lets these override the exporter's own CA file (its
        // session's `verify`): a machine that sets them would fail the
        // exporter's TLS check against our CA.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .await
        .expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "client checks failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    drop(node);
}
