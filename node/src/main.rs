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

/// What `start` and `join` take.
#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// TOML config file (unknown keys are rejected).
    #[arg(long, short = 'c', env = "OLLYSTACK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "OLLYSTACK_LOG", default_value = "info,openraft=warn")]
    log: String,
    #[command(flatten)]
    overrides: Box<Overrides>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node. Every setting has a default: `ollystack-node start` runs
    /// a useful node with an embedded archive under ./ollystack-data.
    Start(NodeArgs),
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
    /// Start a node that joins an existing cluster through `--seed` (any
    /// member's cluster address). A data dir that already belongs to the
    /// cluster simply resumes. Takes the same options as `start`; the
    /// cluster's join token must be given (`--cluster-join-token`).
    Join {
        /// A member's cluster listener, HOST:PORT.
        #[arg(long = "seed", id = "join_seed", value_name = "HOST:PORT")]
        join_seed: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Print the cluster's members (roles, health, ring share) and its ring
    /// epoch, as the node at `--node` sees them.
    Members {
        /// The node to ask (its cluster listener). Default: this config's
        /// cluster address.
        #[arg(long, value_name = "HOST:PORT")]
        node: Option<String>,
        #[arg(long, short = 'c', env = "OLLYSTACK_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
    /// Drain the node at `--node` off the ring (its sessions move to their
    /// new owners) and remove it from the cluster; the node then stops.
    Leave {
        /// The node that leaves (its cluster listener). Default: this
        /// config's cluster address.
        #[arg(long, value_name = "HOST:PORT")]
        node: Option<String>,
        #[arg(long, short = 'c', env = "OLLYSTACK_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<Overrides>,
    },
    /// Make a cluster CA and a certificate per node for mutual TLS between
    /// nodes (`--tls-cert-file`, `--tls-key-file`, `--tls-ca-file`). The CA
    /// in `--out` is reused if it is there, so nodes can be added later.
    /// A node certificate that names the hosts clients dial can also serve
    /// the OTLP and API ports (`--client-tls-cert-file`, `--client-tls-key-file`;
    /// clients trust ca.pem).
    ///
    /// Example: ollystack-node certs --out certs --nodes node-1=10.0.0.1,node-2=10.0.0.2
    Certs {
        /// Directory for ca.pem, ca-key.pem, NAME.pem and NAME-key.pem.
        #[arg(long, value_name = "DIR", default_value = "ollystack-certs")]
        out: PathBuf,
        /// Nodes: NAME (a DNS name; a node is known by it), or
        /// NAME=HOST+HOST with the host names or IP addresses clients dial.
        #[arg(long, value_name = "NODE,...", value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// Host names or IP addresses put in every node's certificate (a
        /// load balancer's name, say).
        #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
        hosts: Vec<String>,
        /// Days the node certificates are valid (the CA: at least ten years).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Manage the bearer tokens of the OTLP and API ports (`--auth-tokens-file`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the version and exit.
    Version,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Add a token and print it (only its hash is kept: store it now).
    /// Nodes using the file pick it up within seconds.
    ///
    /// Example: ollystack-node token add --file tokens.toml --name collector --scopes ingest --tenant acme
    Add {
        /// The tokens file (made if missing).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// A name for the token (shown in logs and `token list`).
        #[arg(long)]
        name: String,
        /// What it may do: ingest (OTLP), read (API, /metrics), admin (both).
        #[arg(long, value_name = "SCOPE,...", value_delimiter = ',', required = true, value_parser = parse_scope)]
        scopes: Vec<ollystack_node::access::Scope>,
        /// With tenancy on, the only tenant its caller writes and reads.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List a tokens file's tokens (names, scopes, tenants).
    List {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

fn parse_scope(text: &str) -> Result<ollystack_node::access::Scope, String> {
    ollystack_node::access::Scope::parse(text).ok_or_else(|| format!("{text:?}: expected ingest, read or admin"))
}

fn token(command: TokenCommand) -> ExitCode {
    let result = match command {
        TokenCommand::Add { file, name, scopes, tenant } => {
            ollystack_node::access::cli::add(&file, &name, &scopes, tenant.as_deref()).map(|token| format!("{token}\n"))
        }
        TokenCommand::List { file } => ollystack_node::access::cli::list(&file),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("ollystack-node {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Token(command) => token(command),
        Command::Certs { out, nodes, hosts, days } => match ollystack_node::certs::make(&out, &nodes, &hosts, days) {
            Ok(made) => {
                let ca = out.join("ca.pem");
                println!("{} {}", if made.new_ca { "made the cluster CA" } else { "reused the cluster CA" }, ca.display());
                for (cert, key) in &made.nodes {
                    println!("  --tls-cert-file {} --tls-key-file {} --tls-ca-file {}", cert.display(), key.display(), ca.display());
                }
                println!("keep {} secret: whoever holds it can make cluster members", out.join("ca-key.pem").display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Start(node) => start(node, None),
        Command::Join { join_seed, node } => start(node, Some(join_seed)),
        Command::Members { node, config, overrides } => client_call(config, &overrides, node, |addr, cfg| async move {
            let table = ollystack_node::cluster::members_via(&client_transport(&cfg)?, &addr, rpc_timeout(&cfg)).await?;
            print!("{table}");
            Ok(())
        }),
        Command::Leave { node, config, overrides } => client_call(config, &overrides, node, |addr, cfg| async move {
            let epoch = ollystack_node::cluster::leave_via(
                &client_transport(&cfg)?,
                &addr,
                cfg.cluster.join_token.expose(),
                rpc_timeout(&cfg) * 30,
            )
            .await?;
            println!("{addr} left the cluster; ring epoch is now {epoch}");
            Ok(())
        }),
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

fn start(args: NodeArgs, seed: Option<String>) -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(args.log)).init();
    let mut config = match Config::load(args.config.as_deref(), &args.overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    config.cluster.seed = seed;
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How `members` and `leave` reach a node: with the config's TLS files
/// when it has them (a node with TLS serves no one without a certificate).
fn client_transport(config: &Config) -> Result<ollystack_cluster::net::SharedTransport, ollystack_node::cluster::ClusterError> {
    let tcp = ollystack_cluster::net::TcpTransport::shared();
    match &config.cluster.tls {
        None => Ok(tcp),
        Some(files) => ollystack_cluster::net::TlsTransport::new(tcp, files.clone())
            .map(|t| t as ollystack_cluster::net::SharedTransport)
            .map_err(|e| ollystack_node::cluster::ClusterError::Refused(format!("TLS: {e}"))),
    }
}

fn rpc_timeout(config: &Config) -> std::time::Duration {
    std::time::Duration::from_millis(config.cluster.rpc_timeout_ms)
}

/// Runs one call against a node's cluster listener (`node`, or the
/// config's cluster address).
fn client_call<F, Fut>(config: Option<PathBuf>, overrides: &Overrides, node: Option<String>, call: F) -> ExitCode
where
    F: FnOnce(String, Config) -> Fut,
    Fut: std::future::Future<Output = Result<(), ollystack_node::cluster::ClusterError>>,
{
    let config = match Config::load(config.as_deref(), overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = node.unwrap_or_else(|| config.cluster.advertise_addr.clone());
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(call(addr.clone(), config)).map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {addr}: {e}");
            ExitCode::FAILURE
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
        let node = ollystack_node::server::start(config).await?;
        println!(
            "ollystack-node ready: otlp grpc {} | otlp http {} | api http://{} | cluster {} ({})",
            node.otlp_grpc_addr, node.otlp_http_addr, node.api_addr, node.cluster_addr, node.cluster.id
        );
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = node.removed_from_cluster() => tracing::info!("this node left the cluster"),
        }
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
