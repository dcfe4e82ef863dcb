//! Runs the real `ollystack-node` binary for a benchmark and reads its CPU
//! time and resident memory from /proc.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct NodeProc {
    /// Held so the node lives as long as this handle (killed on drop).
    _child: Child,
    pub pid: u32,
    pub http: String,
    /// The API's base URL (`http://host:port`).
    pub api: String,
}

pub async fn spawn(bin: &str, data_dir: &std::path::Path, extra: &[&str]) -> anyhow::Result<NodeProc> {
    let mut child = Command::new(bin)
        .args([
            "start",
            "--listen-otlp-grpc",
            "127.0.0.1:0",
            "--listen-otlp-http",
            "127.0.0.1:0",
            "--listen-api",
            "127.0.0.1:0",
            "--listen-cluster",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (pid, ready) = wait_ready(&mut child).await?;
    let field = |name: &str| ready.split(name).nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_default().to_owned();
    Ok(NodeProc { _child: child, pid, http: format!("http://{}", field("otlp http ")), api: field("api ") })
}

/// Waits (at most 60 s) for a started node's "ready" line; returns its pid
/// and that line. The rest of stdout keeps being drained, so the node never
/// blocks on a full pipe.
pub async fn wait_ready(child: &mut Child) -> anyhow::Result<(u32, String)> {
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("node exited"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("ollystack-node ready:") {
                return Ok(line);
            }
        }
        anyhow::bail!("node exited before it was ready")
    })
    .await??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((pid, ready))
}

/// User + system CPU seconds of a process.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the comm.
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kb * 1024)
}
