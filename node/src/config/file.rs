//! The TOML layout of the config file, with every default in one place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::correlate::CorrelationSettings;
use crate::secret::Secret;
use crate::store::clickhouse::ClickHouseSettings;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub receiver: Receiver,
    pub session: Session,
    pub correlation: Correlation,
    pub archive: ArchiveCfg,
    pub storage: StorageCfg,
    pub clickhouse: ClickHouseCfg,
    pub cluster: ClusterCfg,
    pub limits: LimitsCfg,
    pub llm: LlmCfg,
    pub tls: TlsCfg,
    pub auth: AuthCfg,
    pub client_tls: ClientTlsCfg,
    /// Serve ports to other hosts without authentication: only on a
    /// network where every host is trusted (anyone who reaches the cluster
    /// port owns the cluster; the OTLP and API ports take and show every
    /// tenant's data).
    pub insecure: bool,
    pub ingest: IngestCfg,
}

/// `[ingest]`: attribute limits as the OpenTelemetry SDKs define them
/// (`OTEL_ATTRIBUTE_COUNT_LIMIT` and friends), applied by this node to every
/// span, span event and link, log record and resource it receives, since
/// senders cannot be trusted to have applied them. See
/// `ingest::attr_limits` for the exact rules. Not the cardinality limits of
/// `[limits]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestCfg {
    /// Attributes kept per span, event, link, log record or resource.
    pub attribute_count_limit: u64,
    /// Characters kept of a string value (bytes of a byte array).
    pub attribute_value_length_limit: u64,
    /// Deepest array/map nesting kept in one value (1: no nesting).
    pub attribute_value_depth_limit: u64,
    /// Array elements and map entries kept in one value, all levels together.
    pub attribute_value_element_limit: u64,
    pub span_event_count_limit: u64,
    pub span_link_count_limit: u64,
    /// Characters (bytes) kept of each string (byte array) in a log body.
    pub log_body_length_limit: u64,
}

impl Default for IngestCfg {
    fn default() -> Self {
        let d = crate::ingest::AttrLimits::default();
        Self {
            attribute_count_limit: d.attribute_count_limit as u64,
            attribute_value_length_limit: d.attribute_value_length_limit as u64,
            attribute_value_depth_limit: d.attribute_value_depth_limit as u64,
            attribute_value_element_limit: d.attribute_value_element_limit as u64,
            span_event_count_limit: d.span_event_count_limit as u64,
            span_link_count_limit: d.span_link_count_limit as u64,
            log_body_length_limit: d.log_body_length_limit as u64,
        }
    }
}

/// `[tls]`: this node's certificate and the cluster CA (PEM files). All
/// three or none; `ollystack-node certs` makes a set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsCfg {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// `[auth]`: who may call the OTLP and API ports.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthCfg {
    /// Bearer tokens (hashed) with their scopes and tenants; `ollystack-node
    /// token add` writes it. Set: every OTLP and API call needs a token
    /// (health checks excepted).
    pub tokens_file: PathBuf,
}

/// `[client_tls]`: the certificate the OTLP and API ports present (PEM
/// files; both or none).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTlsCfg {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[llm]`: an optional model that phrases computed RCA results (off by default).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LlmCfg {
    /// `off`, `openai` (and OpenAI-compatible servers), `anthropic` or `ollama`.
    pub provider: String,
    /// Base URL, without the API path; empty: the provider's public default.
    pub url: String,
    pub model: String,
    /// Empty: no key is sent (required for `anthropic`).
    pub api_key: Secret,
    /// A file holding the API key (instead of `api_key`).
    pub api_key_file: PathBuf,
    /// Deadline of one explanation request; past it the deterministic text is answered.
    pub timeout_ms: u64,
}

impl Default for LlmCfg {
    fn default() -> Self {
        Self {
            provider: "off".into(),
            url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            api_key_file: PathBuf::new(),
            timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub api: String,
    /// Node-to-node gRPC (Raft, forwarding, routed queries).
    pub cluster: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Receiver {
    pub max_request_bytes: u64,
    pub max_concurrent_requests: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Session {
    pub idle_timeout_ms: u64,
    pub max_age_ms: u64,
    pub max_spans: u64,
    pub max_logs: u64,
    pub memory_budget_bytes: u64,
    pub max_live_sessions: u64,
    pub tick_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Correlation {
    pub attribute: String,
    pub header_attributes: Vec<String>,
    pub baggage_attributes: Vec<String>,
    pub baggage_member: String,
    pub log_body_fields: Vec<String>,
    pub max_id_length: usize,
    pub trusted_prefixes: Vec<String>,
    pub tenancy: bool,
    pub tenant_attribute: String,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveCfg {
    pub retention_ms: u64,
    pub max_bytes: u64,
    pub expire_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageCfg {
    /// `embedded` (sled archive in the data dir) or `clickhouse`.
    pub backend: String,
    /// WAL size beyond which ingest answers 'retry later' (a storage outage
    /// backs up into the WAL up to here).
    pub wal_max_bytes: u64,
    /// sled's page cache for the archive and indexes, at most (outside the
    /// memory budget, which counts live data).
    pub cache_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterCfg {
    /// Address other nodes reach this node's cluster listener at; empty:
    /// the listen address (127.0.0.1 when it is 0.0.0.0).
    pub advertise: String,
    /// Shared secret a joining node must present; empty: joins refused.
    pub join_token: Secret,
    /// A file holding the join token (instead of `join_token`).
    pub join_token_file: PathBuf,
    /// This node's ring weight (1..=8).
    pub weight: u32,
    pub heartbeat_interval_ms: u64,
    /// A node silent this long leaves the ring (by a Raft decision).
    pub failure_timeout_ms: u64,
    /// Raft election timeout, lower bound (the upper bound is twice it).
    pub election_timeout_ms: u64,
    /// Deadline of one node-to-node call.
    pub rpc_timeout_ms: u64,
    /// Forwarding calls in flight per node, at most.
    pub forward_max_in_flight: u64,
}

/// Cluster-wide cardinality limits (`[limits]`); no attributes: off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsCfg {
    /// Length of a limit window; windows are aligned to the Unix epoch.
    pub window_ms: u64,
    /// The smallest lease of quota a node asks for. Leases are sized from
    /// the node's recent rate of new values (up to 65536 units, and at
    /// most a fair share of what is left), so the default of 1 lets an idle
    /// node hold a unit or two; a larger value trades stranded units on
    /// idle nodes for fewer Raft round trips at low rates. Before adaptive
    /// leases this was the fixed lease size: an old config's value now
    /// works as a floor.
    pub lease_units: u64,
    /// Attribute name → distinct values allowed per window, cluster-wide.
    pub attributes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseCfg {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// A file holding the password (instead of `password`).
    pub password_file: PathBuf,
    pub compression: bool,
    pub migrate_on_start: bool,
    pub ttl_days: u32,
    pub batch_max_rows: u64,
    pub batch_max_bytes: u64,
    pub batch_max_delay_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for StorageCfg {
    fn default() -> Self {
        Self { backend: "embedded".into(), wal_max_bytes: 8 << 30, cache_bytes: 128 << 20 }
    }
}

impl Default for ClickHouseCfg {
    fn default() -> Self {
        let s = ClickHouseSettings::default();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        Self {
            url: s.url,
            database: s.database,
            user: s.user,
            password: s.password,
            password_file: PathBuf::new(),
            compression: s.compression,
            migrate_on_start: s.migrate_on_start,
            ttl_days: s.ttl_days,
            batch_max_rows: s.batch_max_rows as u64,
            batch_max_bytes: s.batch_max_bytes as u64,
            batch_max_delay_ms: ms(s.batch_max_delay),
            retry_initial_ms: ms(s.retry_initial),
            retry_max_ms: ms(s.retry_max),
            request_timeout_ms: ms(s.request_timeout),
        }
    }
}

impl Default for ConfigFile {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./ollystack-data"),
            listen: Listen::default(),
            receiver: Receiver::default(),
            session: Session::default(),
            correlation: Correlation::default(),
            archive: ArchiveCfg::default(),
            storage: StorageCfg::default(),
            clickhouse: ClickHouseCfg::default(),
            llm: LlmCfg::default(),
            cluster: ClusterCfg::default(),
            limits: LimitsCfg::default(),
            tls: TlsCfg::default(),
            auth: AuthCfg::default(),
            client_tls: ClientTlsCfg::default(),
            insecure: false,
            ingest: IngestCfg::default(),
        }
    }
}

impl Default for LimitsCfg {
    fn default() -> Self {
        Self { window_ms: 60_000, lease_units: 1, attributes: BTreeMap::new() }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            otlp_grpc: "127.0.0.1:4317".into(),
            otlp_http: "127.0.0.1:4318".into(),
            api: "127.0.0.1:8080".into(),
            cluster: "127.0.0.1:4320".into(),
        }
    }
}

impl Default for ClusterCfg {
    fn default() -> Self {
        Self {
            advertise: String::new(),
            join_token: Secret::default(),
            join_token_file: PathBuf::new(),
            weight: 1,
            heartbeat_interval_ms: 500,
            failure_timeout_ms: 5_000,
            election_timeout_ms: 1_500,
            rpc_timeout_ms: 2_000,
            forward_max_in_flight: 64,
        }
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Self { max_request_bytes: 16 << 20, max_concurrent_requests: 256 }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self {
            idle_timeout_ms: 30_000,
            max_age_ms: 300_000,
            max_spans: 10_000,
            max_logs: 10_000,
            memory_budget_bytes: 1 << 30,
            max_live_sessions: 100_000,
            tick_interval_ms: 1_000,
        }
    }
}

impl Default for Correlation {
    fn default() -> Self {
        let s = CorrelationSettings::default();
        Self {
            attribute: s.attribute,
            header_attributes: s.header_attributes,
            baggage_attributes: s.baggage_attributes,
            baggage_member: s.baggage_member,
            log_body_fields: s.log_body_fields,
            max_id_length: s.max_id_length,
            trusted_prefixes: s.trusted_prefixes,
            tenancy: s.tenancy_enabled,
            tenant_attribute: s.tenant_attribute,
            seed: None,
        }
    }
}

impl Default for ArchiveCfg {
    fn default() -> Self {
        Self { retention_ms: 7 * 24 * 3600 * 1000, max_bytes: 10 << 30, expire_interval_ms: 60_000 }
    }
}

impl ConfigFile {
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
