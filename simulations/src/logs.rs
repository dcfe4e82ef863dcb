//! Node logs in a simulation (`RUST_LOG=ollystack_node=debug`): every line
//! says which simulated host wrote it and at which simulated millisecond.
//! All hosts run on one thread, each on its own tokio runtime, so the host
//! is found by the current runtime's ID (registered when a node starts).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

static HOSTS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// The current runtime's ID, when there is one (needs `tokio_unstable`).
fn runtime_id() -> Option<String> {
    #[cfg(tokio_unstable)]
    {
        tokio::runtime::Handle::try_current().ok().map(|h| h.id().to_string())
    }
    #[cfg(not(tokio_unstable))]
    {
        None
    }
}

/// Names the current runtime's host (called from the host's software).
pub fn register_host(name: &str) {
    if let (Some(id), Ok(mut hosts)) = (runtime_id(), HOSTS.lock()) {
        hosts.insert(id, name.to_owned());
    }
}

/// Log lines' prefix: simulated ms and host.
pub struct HostTime;

impl FormatTime for HostTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let ms = turmoil::sim_elapsed().map_or(0, |d| d.as_millis());
        let host = runtime_id().and_then(|id| HOSTS.lock().ok()?.get(&id).cloned()).unwrap_or_else(|| "-".into());
        write!(w, "{ms:>7} ms {host:>4}")
    }
}

/// Sends the nodes' logs to stderr, filtered by `RUST_LOG`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_timer(HostTime)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
}
