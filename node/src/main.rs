//! `ollystack-node`: the command-line entry point (CLI only; everything else
//! lives in the library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ollystack_node::config::{Config, Overrides, StorageChoice};

/// jemalloc instead of the system allocator: ingest allocates many small
/// buffers per span. Measured with `ollystack-benches` on this machine,
/// jemalloc gave about 3x the ingest throughput per CPU of glibc malloc and
/// 2x that of mimalloc, at a live-span memory between the two.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// OllyStack node: receives OpenTelemetry data (OTLP gRPC :4317, OTLP HTTP
/// :4318), assembles everything that shares a correlation ID into live
/// sessions, and answers queries on :8080 (`/api/v1/correlate/{id}`).
#[derive(Debug, Parser)]
#[command(name = "ollystack-node", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node. Every setting has a default: `ollystack-node start` runs
    /// a useful node with an embedded archive under ./ollystack-data.
    Start {
        /// TOML config file (unknown keys are rejected).
        #[arg(long, short = 'c', env = "OLLYSTACK_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log filter (tracing EnvFilter syntax).
        #[arg(long, env = "OLLYSTACK_LOG", default_value = "info")]
        log: String,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
    /// Apply pending ClickHouse migrations (creates the database and
    /// OllyStack's tables from the `[clickhouse]` settings) and exit. Takes
    /// the same config as `start`; the storage backend is ClickHouse here
    /// whatever `storage.backend` says.
    Migrate {
        /// TOML config file (unknown keys are rejected).
        #[arg(long, short = 'c', env = "OLLYSTACK_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log filter (tracing EnvFilter syntax).
        #[arg(long, env = "OLLYSTACK_LOG", default_value = "warn")]
        log: String,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
    /// Print the version and exit.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("ollystack-node {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Start { config, log, overrides } => {
            tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(log)).init();
            let config = match Config::load(config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { config, log, mut overrides } => {
            tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(log)).init();
            overrides.storage_backend = Some("clickhouse".into());
            let settings = match Config::load(config.as_deref(), &overrides).map(|c| c.storage) {
                Ok(StorageChoice::ClickHouse(settings)) => settings,
                Ok(StorageChoice::Embedded) => {
                    eprintln!("error: storage backend is not clickhouse");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match migrate(&settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn migrate(settings: &ollystack_node::store::clickhouse::ClickHouseSettings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(ollystack_node::store::clickhouse::migrate(settings))?;
    for applied in &report.applied {
        println!("applied {} ({} statements)", applied.name, applied.statements);
    }
    println!("{report}");
    Ok(())
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let node = ollystack_node::node::start(config).await?;
        println!(
            "ollystack-node ready: otlp grpc {} | otlp http {} | api http://{}",
            node.otlp_grpc_addr, node.otlp_http_addr, node.api_addr
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
