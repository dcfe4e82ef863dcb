//! Secrets given as environment variables never reach `--help` (it printed
//! them as "[env: VAR=value]").

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ollystack-node");

#[test]
fn help_does_not_print_secret_variables() {
    let secrets = [
        ("OLLYSTACK_CLICKHOUSE_PASSWORD", "ch-pass-123"),
        ("OLLYSTACK_CLUSTER_JOIN_TOKEN", "join-tok-456"),
        ("OLLYSTACK_LLM_API_KEY", "llm-key-789"),
    ];
    for command in ["start", "join", "members", "leave", "migrate"] {
        let out = Command::new(BIN).args([command, "--help"]).envs(secrets).output().expect("help runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("--cluster-join-token"), "{command} --help lists the flag: {text}");
        for (var, value) in secrets {
            assert!(!text.contains(value), "{command} --help printed {var}");
        }
    }
}
