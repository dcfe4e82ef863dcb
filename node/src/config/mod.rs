//! Node configuration: a TOML file (unknown keys rejected) under defaults,
//! then `OLLYSTACK_*` environment variables and command-line flags (clap
//! reads both; a flag wins over its variable), then validation into the
//! immutable [`Config`]. Every error names the key and the bad value.
//!
//! * `file`: the serde layout of the TOML file, with defaults.
//! * `overrides`: the flags / env vars, one per key.

mod file;
mod overrides;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use file::ConfigFile;
pub use overrides::{AttributeLimits, Overrides};

use ollystack_cluster::admission::{self, LimiterConfig};
use ollystack_cluster::net::{ServerTlsFiles, TlsFiles};

use crate::correlate::CorrelationSettings;
use crate::ingest::AttrLimits;
use crate::llm::{LlmSettings, Provider};
use crate::receive::ReceiverLimits;
use crate::secret::Secret;
use crate::session::FinishRules;
use crate::store::clickhouse::{is_identifier, ClickHouseSettings};

/// A configuration problem, naming the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {value:?} ({reason})")]
    Invalid { key: &'static str, value: String, reason: String },
}

fn invalid(key: &'static str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, value: value.to_string(), reason: reason.into() }
}

/// A secret given inline or as a file (not both); an unreadable file is an
/// error naming the file, never the secret.
fn secret(key: &'static str, inline: &Secret, file_key: &'static str, file: &std::path::Path) -> Result<Secret, ConfigError> {
    if file.as_os_str().is_empty() {
        return Ok(inline.clone());
    }
    if !inline.is_empty() {
        return Err(invalid(file_key, file.display(), format!("give either `{key}` or `{file_key}`, not both")));
    }
    Secret::from_file(file).map_err(|e| invalid(file_key, file.display(), format!("cannot read it: {e}")))
}

/// Deepest `ingest.attribute_value_depth_limit` accepted: OTLP decoding
/// nests no deeper than about 100 levels anyway, and real values a handful.
const ATTRIBUTE_VALUE_DEPTH_LIMIT_MAX: u64 = 64;

fn positive(key: &'static str, v: u64) -> Result<u64, ConfigError> {
    if v == 0 {
        Err(invalid(key, v, "must be greater than 0"))
    } else {
        Ok(v)
    }
}

/// The validated configuration of a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where all local state lives (WAL, archive, indexes).
    pub data_dir: PathBuf,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub receiver: ReceiverLimits,
    pub finish: FinishRules,
    pub memory_budget_bytes: u64,
    /// Live sessions at most (`session.max_live_sessions`).
    pub max_live_sessions: u64,
    /// How often live sessions check their finishing rule.
    pub tick_interval_ms: u64,
    pub correlation: CorrelationSettings,
    /// Seed of generated IDs' randomness; `None` seeds from the OS.
    pub seed: Option<u64>,
    pub archive_retention_ms: u64,
    pub archive_max_bytes: u64,
    pub expire_interval_ms: u64,
    pub storage: StorageChoice,
    pub wal_max_bytes: u64,
    /// sled's page cache, at most (`storage.cache_bytes`).
    pub cache_bytes: u64,
    /// The model that phrases RCA results; `None`: deterministic text only.
    pub llm: Option<LlmSettings>,
    pub cluster: ClusterSettings,
    /// Cluster-wide cardinality limits this node proposes; `None` when no
    /// attribute is limited. The cluster keeps the first limits proposed,
    /// and every node enforces the cluster's.
    pub limits: Option<LimiterConfig>,
    pub access: ClientAccess,
    /// OTel attribute count and value length limits applied on ingest.
    pub attr_limits: AttrLimits,
}

/// Who may call the OTLP and API ports, and over what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAccess {
    /// Bearer tokens: every call needs one (health checks excepted).
    pub tokens_file: Option<PathBuf>,
    /// TLS on the OTLP and API ports.
    pub tls: Option<ServerTlsFiles>,
}

impl ClientAccess {
    /// Callers are authenticated, and their tokens cannot be read off the
    /// wire.
    pub fn is_secure(&self) -> bool {
        self.tokens_file.is_some() && self.tls.is_some()
    }
}

/// How this node takes part in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub listen_addr: SocketAddr,
    /// What other nodes dial (`host:port`).
    pub advertise_addr: String,
    /// Empty: this node refuses joins.
    pub join_token: Secret,
    pub weight: u32,
    pub heartbeat_interval_ms: u64,
    pub failure_timeout_ms: u64,
    pub election_timeout_ms: u64,
    pub rpc_timeout_ms: u64,
    pub forward_max_in_flight: usize,
    /// `ollystack-node join --seed`: a member's cluster address to join
    /// through (only used while the data dir holds no cluster state).
    pub seed: Option<String>,
    /// Mutual TLS between nodes; `None`: plain TCP (loopback, or `--insecure`).
    pub tls: Option<TlsFiles>,
}

/// Where finished sessions are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageChoice {
    /// The sled archive in the data dir (the default).
    Embedded,
    ClickHouse(ClickHouseSettings),
}

impl Config {
    /// Loads `path` (if any) over the defaults, applies overrides, validates.
    pub fn load(path: Option<&std::path::Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut file = match path {
            Some(p) => ConfigFile::from_path(p)?,
            None => ConfigFile::default(),
        };
        overrides.apply(&mut file);
        file.build_and_validate()
    }
}

impl ConfigFile {
    /// Checks every value and builds the immutable config.
    pub fn build_and_validate(self) -> Result<Config, ConfigError> {
        let addr = |key: &'static str, v: &str| v.parse::<SocketAddr>().map_err(|e| invalid(key, v, format!("not a socket address: {e}")));
        let s = &self.session;
        positive("session.idle_timeout_ms", s.idle_timeout_ms)?;
        positive("session.max_age_ms", s.max_age_ms)?;
        if s.max_age_ms < s.idle_timeout_ms {
            return Err(invalid(
                "session.max_age_ms",
                s.max_age_ms,
                format!("must be at least session.idle_timeout_ms ({})", s.idle_timeout_ms),
            ));
        }
        positive("session.max_spans", s.max_spans)?;
        positive("session.max_logs", s.max_logs)?;
        positive("session.max_live_sessions", s.max_live_sessions)?;
        if s.memory_budget_bytes < 1 << 20 {
            return Err(invalid("session.memory_budget_bytes", s.memory_budget_bytes, "must be at least 1 MiB"));
        }
        positive("session.tick_interval_ms", s.tick_interval_ms)?;
        let r = &self.receiver;
        if r.max_request_bytes < 1024 {
            return Err(invalid("receiver.max_request_bytes", r.max_request_bytes, "must be at least 1024"));
        }
        positive("receiver.max_concurrent_requests", r.max_concurrent_requests)?;
        let c = &self.correlation;
        if c.attribute.trim().is_empty() {
            return Err(invalid("correlation.attribute", &c.attribute, "must not be empty"));
        }
        if !(8..=crate::correlate::MAX_ID_LENGTH_LIMIT).contains(&c.max_id_length) {
            return Err(invalid("correlation.max_id_length", c.max_id_length, "must be between 8 and 1024"));
        }
        if let Some(bad) =
            c.trusted_prefixes.iter().find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(invalid("correlation.trusted_prefixes", bad, "prefixes must be non-empty [A-Za-z0-9_-]"));
        }
        positive("archive.retention_ms", self.archive.retention_ms)?;
        positive("archive.max_bytes", self.archive.max_bytes)?;
        positive("archive.expire_interval_ms", self.archive.expire_interval_ms)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "", "must not be empty"));
        }
        let storage = self.storage_choice()?;
        let llm = self.llm_settings()?;
        if self.storage.cache_bytes < 1 << 20 {
            return Err(invalid("storage.cache_bytes", self.storage.cache_bytes, "must be at least 1 MiB"));
        }
        if self.storage.wal_max_bytes < 1 << 20 {
            return Err(invalid("storage.wal_max_bytes", self.storage.wal_max_bytes, "must be at least 1 MiB"));
        }
        let cluster = self.cluster_settings()?;
        let limits = self.limits()?;
        let (otlp_grpc_addr, otlp_http_addr, api_addr) = (
            addr("listen.otlp_grpc", &self.listen.otlp_grpc)?,
            addr("listen.otlp_http", &self.listen.otlp_http)?,
            addr("listen.api", &self.listen.api)?,
        );
        let access = self.client_access()?;
        let attr_limits = self.attr_limits()?;
        for (key, at) in [("listen.otlp_grpc", otlp_grpc_addr), ("listen.otlp_http", otlp_http_addr), ("listen.api", api_addr)] {
            // Other hosts reach these ports without TLS and tokens only on
            // purpose.
            if !self.insecure && !at.ip().is_loopback() && !access.is_secure() {
                return Err(invalid(
                    key,
                    at,
                    "other hosts could send data to or read every session of this port without authentication: set auth.tokens_file \
                     (`ollystack-node token add` writes it) and client_tls.cert_file / key_file, listen on loopback, or pass --insecure \
                     on a network where every host is trusted",
                ));
            }
        }
        Ok(Config {
            data_dir: self.data_dir.clone(),
            otlp_grpc_addr,
            otlp_http_addr,
            api_addr,
            receiver: ReceiverLimits {
                max_request_bytes: r.max_request_bytes as usize,
                max_concurrent_requests: r.max_concurrent_requests as usize,
                memory: crate::receive::RequestMemory::default(),
            },
            finish: FinishRules {
                idle_timeout_ms: s.idle_timeout_ms,
                max_age_ms: s.max_age_ms,
                max_spans: s.max_spans as usize,
                max_logs: s.max_logs as usize,
            },
            memory_budget_bytes: s.memory_budget_bytes,
            max_live_sessions: s.max_live_sessions,
            tick_interval_ms: s.tick_interval_ms,
            correlation: CorrelationSettings {
                attribute: c.attribute.clone(),
                header_attributes: c.header_attributes.clone(),
                baggage_attributes: c.baggage_attributes.clone(),
                baggage_member: c.baggage_member.clone(),
                log_body_fields: c.log_body_fields.clone(),
                max_id_length: c.max_id_length,
                trusted_prefixes: c.trusted_prefixes.clone(),
                tenancy_enabled: c.tenancy,
                tenant_attribute: c.tenant_attribute.clone(),
            },
            seed: c.seed,
            archive_retention_ms: self.archive.retention_ms,
            archive_max_bytes: self.archive.max_bytes,
            expire_interval_ms: self.archive.expire_interval_ms,
            storage,
            wal_max_bytes: self.storage.wal_max_bytes,
            cache_bytes: self.storage.cache_bytes,
            llm,
            cluster,
            limits,
            access,
            attr_limits,
        })
    }

    /// `[ingest]`. Count limits may be 0 (the spec allows it: nothing is
    /// kept); a length, depth or element limit of 0 would erase every value,
    /// so it is refused. Depth is capped so walking a value stays shallow.
    fn attr_limits(&self) -> Result<AttrLimits, ConfigError> {
        let i = &self.ingest;
        let size = |key: &'static str, v: u64| usize::try_from(v).map_err(|_| invalid(key, v, "too large for this platform"));
        let at_least_one = |key: &'static str, v: u64| positive(key, v).and_then(|v| size(key, v));
        if !(1..=ATTRIBUTE_VALUE_DEPTH_LIMIT_MAX).contains(&i.attribute_value_depth_limit) {
            return Err(invalid(
                "ingest.attribute_value_depth_limit",
                i.attribute_value_depth_limit,
                format!("must be 1..={ATTRIBUTE_VALUE_DEPTH_LIMIT_MAX}"),
            ));
        }
        Ok(AttrLimits {
            attribute_count_limit: size("ingest.attribute_count_limit", i.attribute_count_limit)?,
            attribute_value_length_limit: at_least_one("ingest.attribute_value_length_limit", i.attribute_value_length_limit)?,
            attribute_value_depth_limit: i.attribute_value_depth_limit as usize,
            attribute_value_element_limit: at_least_one("ingest.attribute_value_element_limit", i.attribute_value_element_limit)?,
            span_event_count_limit: size("ingest.span_event_count_limit", i.span_event_count_limit)?,
            span_link_count_limit: size("ingest.span_link_count_limit", i.span_link_count_limit)?,
            log_body_length_limit: at_least_one("ingest.log_body_length_limit", i.log_body_length_limit)?,
        })
    }

    /// `[auth]` and `[client_tls]`.
    fn client_access(&self) -> Result<ClientAccess, ConfigError> {
        let t = &self.client_tls;
        let tls = match (t.cert_file.as_os_str().is_empty(), t.key_file.as_os_str().is_empty()) {
            (true, true) => None,
            (false, false) => Some(ServerTlsFiles { cert: t.cert_file.clone(), key: t.key_file.clone() }),
            (true, false) => return Err(invalid("client_tls.cert_file", "", "client_tls.cert_file and client_tls.key_file go together")),
            (false, true) => return Err(invalid("client_tls.key_file", "", "client_tls.cert_file and client_tls.key_file go together")),
        };
        let tokens_file = (!self.auth.tokens_file.as_os_str().is_empty()).then(|| self.auth.tokens_file.clone());
        Ok(ClientAccess { tokens_file, tls })
    }

    fn limits(&self) -> Result<Option<LimiterConfig>, ConfigError> {
        let l = &self.limits;
        if l.attributes.keys().any(|name| name.trim().is_empty()) {
            return Err(invalid("limits.attributes", "", "attribute names must not be empty"));
        }
        // Checked even with no attribute, so a typo is caught before it matters.
        let config = LimiterConfig::new(l.window_ms, l.lease_units, l.attributes.clone()).map_err(|e| match e {
            admission::ConfigError::WindowMs(v) => invalid("limits.window_ms", v, "must be at least 1"),
            admission::ConfigError::LeaseUnits(v) => invalid("limits.lease_units", v, "must be at least 1"),
            admission::ConfigError::TooManyAttributes { count } => {
                invalid("limits.attributes", format!("{count} attributes"), format!("at most {}", admission::MAX_ATTRIBUTES))
            }
            admission::ConfigError::Limit { attribute, limit } => invalid(
                "limits.attributes",
                format!("{attribute} = {limit}"),
                format!("a limit must be 1..={}", admission::MAX_VALUES_PER_WINDOW),
            ),
        })?;
        Ok((!l.attributes.is_empty()).then_some(config))
    }

    fn cluster_settings(&self) -> Result<ClusterSettings, ConfigError> {
        let c = &self.cluster;
        let listen_addr: SocketAddr = self
            .listen
            .cluster
            .parse()
            .map_err(|e| invalid("listen.cluster", &self.listen.cluster, format!("not a socket address: {e}")))?;
        let advertise_addr = if c.advertise.is_empty() {
            let ip = if listen_addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { listen_addr.ip() };
            SocketAddr::new(ip, listen_addr.port()).to_string()
        } else {
            c.advertise.clone()
        };
        // A derived address may have port 0 (the bound port fills it in).
        if !c.advertise.is_empty()
            && !advertise_addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
        {
            return Err(invalid("cluster.advertise", &advertise_addr, "must be host:port with a non-zero port"));
        }
        if !(1..=ollystack_cluster::ring::MAX_WEIGHT).contains(&c.weight) {
            return Err(invalid("cluster.weight", c.weight, format!("must be 1..={}", ollystack_cluster::ring::MAX_WEIGHT)));
        }
        positive("cluster.heartbeat_interval_ms", c.heartbeat_interval_ms)?;
        if c.failure_timeout_ms < 2 * c.heartbeat_interval_ms {
            return Err(invalid(
                "cluster.failure_timeout_ms",
                c.failure_timeout_ms,
                "must be at least twice cluster.heartbeat_interval_ms",
            ));
        }
        if c.election_timeout_ms < 2 * c.heartbeat_interval_ms {
            return Err(invalid(
                "cluster.election_timeout_ms",
                c.election_timeout_ms,
                "must be at least twice cluster.heartbeat_interval_ms",
            ));
        }
        positive("cluster.rpc_timeout_ms", c.rpc_timeout_ms)?;
        positive("cluster.forward_max_in_flight", c.forward_max_in_flight)?;
        let tls = self.tls_files()?;
        if tls.is_none() && !self.insecure && !listen_addr.ip().is_loopback() {
            return Err(invalid(
                "listen.cluster",
                listen_addr,
                "other hosts could reach the cluster port without TLS, and whoever reaches it owns the cluster: set tls.cert_file, \
                 tls.key_file and tls.ca_file (`ollystack-node certs` makes them), listen on loopback, or pass --insecure on a network \
                 where every host is trusted",
            ));
        }
        Ok(ClusterSettings {
            listen_addr,
            advertise_addr,
            join_token: secret("cluster.join_token", &c.join_token, "cluster.join_token_file", &c.join_token_file)?,
            weight: c.weight,
            heartbeat_interval_ms: c.heartbeat_interval_ms,
            failure_timeout_ms: c.failure_timeout_ms,
            election_timeout_ms: c.election_timeout_ms,
            rpc_timeout_ms: c.rpc_timeout_ms,
            forward_max_in_flight: c.forward_max_in_flight as usize,
            seed: None,
            tls,
        })
    }

    /// `[tls]`: all three files or none.
    fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        let t = &self.tls;
        let given = [("tls.cert_file", &t.cert_file), ("tls.key_file", &t.key_file), ("tls.ca_file", &t.ca_file)];
        let missing: Vec<&str> = given.iter().filter(|(_, p)| p.as_os_str().is_empty()).map(|(k, _)| *k).collect();
        match missing.len() {
            3 => Ok(None),
            0 => Ok(Some(TlsFiles { cert: t.cert_file.clone(), key: t.key_file.clone(), ca: t.ca_file.clone() })),
            _ => Err(invalid(missing[0], "", "tls.cert_file, tls.key_file and tls.ca_file go together")),
        }
    }

    fn llm_settings(&self) -> Result<Option<LlmSettings>, ConfigError> {
        let l = &self.llm;
        if l.provider.is_empty() || l.provider == "off" {
            return Ok(None);
        }
        let provider =
            Provider::parse(&l.provider).ok_or_else(|| invalid("llm.provider", &l.provider, "must be off, openai, anthropic or ollama"))?;
        let url = if l.url.is_empty() { provider.default_url() } else { l.url.as_str() };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("llm.url", url, "must be an http:// or https:// URL"));
        }
        if l.model.trim().is_empty() {
            return Err(invalid("llm.model", &l.model, "must name a model when llm.provider is set"));
        }
        let api_key = secret("llm.api_key", &l.api_key, "llm.api_key_file", &l.api_key_file)?;
        if provider == Provider::Anthropic && api_key.is_empty() {
            return Err(invalid("llm.api_key", "", "anthropic needs an API key"));
        }
        if !(1..=120_000).contains(&l.timeout_ms) {
            return Err(invalid("llm.timeout_ms", l.timeout_ms, "must be between 1 and 120000"));
        }
        Ok(Some(LlmSettings {
            provider,
            url: url.trim_end_matches('/').to_owned(),
            model: l.model.clone(),
            api_key,
            timeout: std::time::Duration::from_millis(l.timeout_ms),
        }))
    }

    fn storage_choice(&self) -> Result<StorageChoice, ConfigError> {
        let ch = &self.clickhouse;
        match self.storage.backend.as_str() {
            "embedded" => return Ok(StorageChoice::Embedded),
            "clickhouse" => {}
            other => return Err(invalid("storage.backend", other, "must be `embedded` or `clickhouse`")),
        }
        if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
            return Err(invalid("clickhouse.url", &ch.url, "must be an http:// or https:// URL of ClickHouse's HTTP interface"));
        }
        if !is_identifier(&ch.database) {
            return Err(invalid("clickhouse.database", &ch.database, "must be an identifier [A-Za-z_][A-Za-z0-9_]*"));
        }
        if ch.ttl_days == 0 {
            return Err(invalid("clickhouse.ttl_days", ch.ttl_days, "must be greater than 0"));
        }
        positive("clickhouse.batch_max_rows", ch.batch_max_rows)?;
        if ch.batch_max_bytes < 1024 {
            return Err(invalid("clickhouse.batch_max_bytes", ch.batch_max_bytes, "must be at least 1024"));
        }
        positive("clickhouse.batch_max_delay_ms", ch.batch_max_delay_ms)?;
        positive("clickhouse.retry_initial_ms", ch.retry_initial_ms)?;
        if ch.retry_max_ms < ch.retry_initial_ms {
            return Err(invalid("clickhouse.retry_max_ms", ch.retry_max_ms, "must be at least clickhouse.retry_initial_ms"));
        }
        positive("clickhouse.request_timeout_ms", ch.request_timeout_ms)?;
        let ms = std::time::Duration::from_millis;
        Ok(StorageChoice::ClickHouse(ClickHouseSettings {
            url: ch.url.trim_end_matches('/').to_owned(),
            database: ch.database.clone(),
            user: ch.user.clone(),
            password: secret("clickhouse.password", &ch.password, "clickhouse.password_file", &ch.password_file)?,
            compression: ch.compression,
            migrate_on_start: ch.migrate_on_start,
            ttl_days: ch.ttl_days,
            batch_max_rows: ch.batch_max_rows as usize,
            batch_max_bytes: ch.batch_max_bytes as usize,
            batch_max_delay: ms(ch.batch_max_delay_ms),
            retry_initial: ms(ch.retry_initial_ms),
            retry_max: ms(ch.retry_max_ms),
            request_timeout: ms(ch.request_timeout_ms),
        }))
    }
}

#[cfg(test)]
mod tests;
