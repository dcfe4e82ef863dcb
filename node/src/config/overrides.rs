//! One flag and one `OLLYSTACK_*` environment variable per config key. A
//! value given either way replaces the file's (flags win over variables;
//! lists are comma-separated).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ConfigFile;
use crate::secret::Secret;

macro_rules! overrides {
    ($( $field:ident : $ty:ty => [$($path:tt)+], $flag:literal, $env:literal, $help:literal $(, $extra:ident = $val:expr)* ; )*) => {
        /// Overrides of config keys.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct Overrides {
            $(
                #[arg(long = $flag, env = $env, help = $help, value_name = "VALUE" $(, $extra = $val)*)]
                pub $field: Option<$ty>,
            )*
        }

        impl Overrides {
            /// Writes every given value into `file`.
            pub fn apply(&self, file: &mut ConfigFile) {
                $( if let Some(v) = &self.$field { file.$($path)+ = v.clone().into(); } )*
            }
        }
    };
}

overrides! {
    data_dir: PathBuf => [data_dir], "data-dir", "OLLYSTACK_DATA_DIR", "Directory for all local state: WAL, archive, indexes [default: ./ollystack-data]";
    otlp_grpc: String => [listen.otlp_grpc], "listen-otlp-grpc", "OLLYSTACK_LISTEN_OTLP_GRPC", "OTLP/gRPC listen address; beyond loopback it needs client TLS and tokens, or --insecure [default: 127.0.0.1:4317]";
    otlp_http: String => [listen.otlp_http], "listen-otlp-http", "OLLYSTACK_LISTEN_OTLP_HTTP", "OTLP/HTTP listen address; beyond loopback it needs client TLS and tokens, or --insecure [default: 127.0.0.1:4318]";
    api: String => [listen.api], "listen-api", "OLLYSTACK_LISTEN_API", "HTTP API and UI listen address; beyond loopback it needs client TLS and tokens, or --insecure [default: 127.0.0.1:8080]";
    cluster_listen: String => [listen.cluster], "listen-cluster", "OLLYSTACK_LISTEN_CLUSTER", "Node-to-node gRPC listen address (Raft, forwarding); beyond loopback it needs TLS or --insecure [default: 127.0.0.1:4320]";
    tls_cert_file: PathBuf => [tls.cert_file], "tls-cert-file", "OLLYSTACK_TLS_CERT_FILE", "This node's certificate (PEM); with --tls-key-file and --tls-ca-file, node-to-node calls use mutual TLS";
    tls_key_file: PathBuf => [tls.key_file], "tls-key-file", "OLLYSTACK_TLS_KEY_FILE", "The certificate's private key (PEM)";
    tls_ca_file: PathBuf => [tls.ca_file], "tls-ca-file", "OLLYSTACK_TLS_CA_FILE", "The cluster CA (PEM): peers must present a certificate it signed";
    tokens_file: PathBuf => [auth.tokens_file], "auth-tokens-file", "OLLYSTACK_AUTH_TOKENS_FILE", "Bearer tokens (hashed) for the OTLP and API ports; `ollystack-node token add` writes it. Set: every call needs a token";
    client_tls_cert_file: PathBuf => [client_tls.cert_file], "client-tls-cert-file", "OLLYSTACK_CLIENT_TLS_CERT_FILE", "Certificate (PEM) the OTLP and API ports present; with --client-tls-key-file they serve TLS";
    client_tls_key_file: PathBuf => [client_tls.key_file], "client-tls-key-file", "OLLYSTACK_CLIENT_TLS_KEY_FILE", "Its private key (PEM)";
    insecure: bool => [insecure], "insecure", "OLLYSTACK_INSECURE", "Serve ports beyond loopback without authentication (a network where every host is trusted)", num_args = 0..=1, default_missing_value = "true";
    cluster_advertise: String => [cluster.advertise], "cluster-advertise", "OLLYSTACK_CLUSTER_ADVERTISE", "Address other nodes use for this node's cluster listener [default: the listen address]";
    join_token: Secret => [cluster.join_token], "cluster-join-token", "OLLYSTACK_CLUSTER_JOIN_TOKEN", "Shared secret nodes present to join the cluster [default: none, joins refused]; prefer --cluster-join-token-file", hide_env_values = true;
    join_token_file: PathBuf => [cluster.join_token_file], "cluster-join-token-file", "OLLYSTACK_CLUSTER_JOIN_TOKEN_FILE", "File holding the join token";
    cluster_weight: u32 => [cluster.weight], "cluster-weight", "OLLYSTACK_CLUSTER_WEIGHT", "Relative capacity of this node on the ring, 1..8 [default: 1]";
    heartbeat_interval_ms: u64 => [cluster.heartbeat_interval_ms], "cluster-heartbeat-interval-ms", "OLLYSTACK_CLUSTER_HEARTBEAT_INTERVAL_MS", "How often nodes are probed [default: 500]";
    failure_timeout_ms: u64 => [cluster.failure_timeout_ms], "cluster-failure-timeout-ms", "OLLYSTACK_CLUSTER_FAILURE_TIMEOUT_MS", "A node silent this long leaves the ring [default: 5000]";
    election_timeout_ms: u64 => [cluster.election_timeout_ms], "cluster-election-timeout-ms", "OLLYSTACK_CLUSTER_ELECTION_TIMEOUT_MS", "Raft election timeout, lower bound [default: 1500]";
    rpc_timeout_ms: u64 => [cluster.rpc_timeout_ms], "cluster-rpc-timeout-ms", "OLLYSTACK_CLUSTER_RPC_TIMEOUT_MS", "Deadline of a node-to-node call [default: 2000]";
    max_request_bytes: u64 => [receiver.max_request_bytes], "receiver-max-request-bytes", "OLLYSTACK_RECEIVER_MAX_REQUEST_BYTES", "Largest OTLP request accepted, after decompression [default: 16777216]";
    max_concurrent_requests: u64 => [receiver.max_concurrent_requests], "receiver-max-concurrent-requests", "OLLYSTACK_RECEIVER_MAX_CONCURRENT_REQUESTS", "OTLP requests in flight per receiver before answering 'retry later' [default: 256]";
    idle_timeout_ms: u64 => [session.idle_timeout_ms], "session-idle-timeout-ms", "OLLYSTACK_SESSION_IDLE_TIMEOUT_MS", "A session finishes after this long without new signals [default: 30000]";
    max_age_ms: u64 => [session.max_age_ms], "session-max-age-ms", "OLLYSTACK_SESSION_MAX_AGE_MS", "A session segment finishes this long after it opened [default: 300000]";
    max_spans: u64 => [session.max_spans], "session-max-spans", "OLLYSTACK_SESSION_MAX_SPANS", "Spans per session segment before a new segment opens [default: 10000]";
    max_logs: u64 => [session.max_logs], "session-max-logs", "OLLYSTACK_SESSION_MAX_LOGS", "Log records per session segment before a new segment opens [default: 10000]";
    max_live_sessions: u64 => [session.max_live_sessions], "session-max-live-sessions", "OLLYSTACK_SESSION_MAX_LIVE_SESSIONS", "Live sessions at most; beyond it ingest answers 'retry later' [default: 100000]";
    memory_budget_bytes: u64 => [session.memory_budget_bytes], "session-memory-budget-bytes", "OLLYSTACK_SESSION_MEMORY_BUDGET_BYTES", "Memory for live sessions; beyond it ingest answers 'retry later' [default: 1073741824]";
    tick_interval_ms: u64 => [session.tick_interval_ms], "session-tick-interval-ms", "OLLYSTACK_SESSION_TICK_INTERVAL_MS", "How often live sessions check whether they finished [default: 1000]";
    attribute: String => [correlation.attribute], "correlation-attribute", "OLLYSTACK_CORRELATION_ATTRIBUTE", "Attribute that carries the correlation ID [default: correlation_id]";
    header_attributes: Vec<String> => [correlation.header_attributes], "correlation-header-attributes", "OLLYSTACK_CORRELATION_HEADER_ATTRIBUTES", "Header attributes holding an ID, in precedence order", value_delimiter = ',';
    baggage_attributes: Vec<String> => [correlation.baggage_attributes], "correlation-baggage-attributes", "OLLYSTACK_CORRELATION_BAGGAGE_ATTRIBUTES", "Attributes holding a W3C baggage string", value_delimiter = ',';
    baggage_member: String => [correlation.baggage_member], "correlation-baggage-member", "OLLYSTACK_CORRELATION_BAGGAGE_MEMBER", "Baggage member that carries the correlation ID [default: correlation_id]";
    log_body_fields: Vec<String> => [correlation.log_body_fields], "correlation-log-body-fields", "OLLYSTACK_CORRELATION_LOG_BODY_FIELDS", "JSON log body fields holding an ID, in precedence order", value_delimiter = ',';
    max_id_length: usize => [correlation.max_id_length], "correlation-max-id-length", "OLLYSTACK_CORRELATION_MAX_ID_LENGTH", "Longest correlation ID accepted [default: 100]";
    trusted_prefixes: Vec<String> => [correlation.trusted_prefixes], "correlation-trusted-prefixes", "OLLYSTACK_CORRELATION_TRUSTED_PREFIXES", "If set, external IDs must start with one of these", value_delimiter = ',';
    tenancy: bool => [correlation.tenancy], "correlation-tenancy", "OLLYSTACK_CORRELATION_TENANCY", "Scope sessions and queries by tenant [default: false]";
    tenant_attribute: String => [correlation.tenant_attribute], "correlation-tenant-attribute", "OLLYSTACK_CORRELATION_TENANT_ATTRIBUTE", "Attribute (or baggage member) naming the tenant [default: tenant_id]";
    seed: u64 => [correlation.seed], "correlation-seed", "OLLYSTACK_CORRELATION_SEED", "Seed for generated IDs (deterministic runs); random when unset";
    retention_ms: u64 => [archive.retention_ms], "archive-retention-ms", "OLLYSTACK_ARCHIVE_RETENTION_MS", "Keep finished sessions this long [default: 604800000]";
    archive_max_bytes: u64 => [archive.max_bytes], "archive-max-bytes", "OLLYSTACK_ARCHIVE_MAX_BYTES", "Archive size ceiling; oldest sessions go first [default: 10737418240]";
    expire_interval_ms: u64 => [archive.expire_interval_ms], "archive-expire-interval-ms", "OLLYSTACK_ARCHIVE_EXPIRE_INTERVAL_MS", "How often retention runs [default: 60000]";
    storage_backend: String => [storage.backend], "storage-backend", "OLLYSTACK_STORAGE_BACKEND", "Where finished sessions go: embedded (sled in the data dir) or clickhouse [default: embedded]";
    cache_bytes: u64 => [storage.cache_bytes], "storage-cache-bytes", "OLLYSTACK_STORAGE_CACHE_BYTES", "Page cache of the embedded archive and indexes, outside the memory budget [default: 134217728]";
    wal_max_bytes: u64 => [storage.wal_max_bytes], "storage-wal-max-bytes", "OLLYSTACK_STORAGE_WAL_MAX_BYTES", "WAL size beyond which ingest answers 'retry later' [default: 8589934592]";
    ch_url: String => [clickhouse.url], "clickhouse-url", "OLLYSTACK_CLICKHOUSE_URL", "ClickHouse HTTP interface [default: http://127.0.0.1:8123]";
    ch_database: String => [clickhouse.database], "clickhouse-database", "OLLYSTACK_CLICKHOUSE_DATABASE", "ClickHouse database for OllyStack's tables [default: ollystack]";
    ch_user: String => [clickhouse.user], "clickhouse-user", "OLLYSTACK_CLICKHOUSE_USER", "ClickHouse user [default: default]";
    ch_password: Secret => [clickhouse.password], "clickhouse-password", "OLLYSTACK_CLICKHOUSE_PASSWORD", "ClickHouse password [default: empty]; prefer --clickhouse-password-file", hide_env_values = true;
    ch_password_file: PathBuf => [clickhouse.password_file], "clickhouse-password-file", "OLLYSTACK_CLICKHOUSE_PASSWORD_FILE", "File holding the ClickHouse password";
    ch_compression: bool => [clickhouse.compression], "clickhouse-compression", "OLLYSTACK_CLICKHOUSE_COMPRESSION", "LZ4-compress ClickHouse traffic [default: true]";
    ch_migrate_on_start: bool => [clickhouse.migrate_on_start], "clickhouse-migrate-on-start", "OLLYSTACK_CLICKHOUSE_MIGRATE_ON_START", "Apply pending migrations at start [default: true]";
    ch_ttl_days: u32 => [clickhouse.ttl_days], "clickhouse-ttl-days", "OLLYSTACK_CLICKHOUSE_TTL_DAYS", "Days rows are kept (table TTL, set when tables are created) [default: 7]";
    ch_batch_max_rows: u64 => [clickhouse.batch_max_rows], "clickhouse-batch-max-rows", "OLLYSTACK_CLICKHOUSE_BATCH_MAX_ROWS", "Rows per flush batch, at most [default: 50000]";
    ch_batch_max_bytes: u64 => [clickhouse.batch_max_bytes], "clickhouse-batch-max-bytes", "OLLYSTACK_CLICKHOUSE_BATCH_MAX_BYTES", "Bytes per flush batch, at most [default: 33554432]";
    ch_batch_max_delay_ms: u64 => [clickhouse.batch_max_delay_ms], "clickhouse-batch-max-delay-ms", "OLLYSTACK_CLICKHOUSE_BATCH_MAX_DELAY_MS", "A flush batch is sent at most this long after its first segment [default: 1000]";
    ch_retry_initial_ms: u64 => [clickhouse.retry_initial_ms], "clickhouse-retry-initial-ms", "OLLYSTACK_CLICKHOUSE_RETRY_INITIAL_MS", "First retry delay of a failed insert [default: 100]";
    ch_retry_max_ms: u64 => [clickhouse.retry_max_ms], "clickhouse-retry-max-ms", "OLLYSTACK_CLICKHOUSE_RETRY_MAX_MS", "Longest retry delay of a failed insert [default: 10000]";
    llm_provider: String => [llm.provider], "llm-provider", "OLLYSTACK_LLM_PROVIDER", "Model that phrases RCA results: off, openai, anthropic or ollama [default: off]";
    llm_url: String => [llm.url], "llm-url", "OLLYSTACK_LLM_URL", "Base URL of the LLM provider [default: the provider's public API]";
    llm_model: String => [llm.model], "llm-model", "OLLYSTACK_LLM_MODEL", "LLM model name";
    llm_api_key: Secret => [llm.api_key], "llm-api-key", "OLLYSTACK_LLM_API_KEY", "LLM API key [default: none]; prefer --llm-api-key-file", hide_env_values = true;
    llm_api_key_file: PathBuf => [llm.api_key_file], "llm-api-key-file", "OLLYSTACK_LLM_API_KEY_FILE", "File holding the LLM API key";
    llm_timeout_ms: u64 => [llm.timeout_ms], "llm-timeout-ms", "OLLYSTACK_LLM_TIMEOUT_MS", "Deadline of one LLM explanation; past it the deterministic text is answered [default: 10000]";
    ch_request_timeout_ms: u64 => [clickhouse.request_timeout_ms], "clickhouse-request-timeout-ms", "OLLYSTACK_CLICKHOUSE_REQUEST_TIMEOUT_MS", "Deadline of one ClickHouse request [default: 30000]";
    limits_window_ms: u64 => [limits.window_ms], "limits-window-ms", "OLLYSTACK_LIMITS_WINDOW_MS", "Length of a cardinality-limit window [default: 60000]";
    limits_lease_units: u64 => [limits.lease_units], "limits-lease-units", "OLLYSTACK_LIMITS_LEASE_UNITS", "Smallest cardinality quota lease a node asks for; leases grow with its rate of new values [default: 1]";
    limits_attributes: AttributeLimits => [limits.attributes], "limits-attributes", "OLLYSTACK_LIMITS_ATTRIBUTES", "Cluster-wide distinct values per window, as attr=N,attr2=M [default: none, limits off]";
    attribute_count_limit: u64 => [ingest.attribute_count_limit], "ingest-attribute-count-limit", "OLLYSTACK_INGEST_ATTRIBUTE_COUNT_LIMIT", "Attributes kept per span, event, link, log record or resource; the rest are dropped and counted [default: 128]";
    attribute_value_length_limit: u64 => [ingest.attribute_value_length_limit], "ingest-attribute-value-length-limit", "OLLYSTACK_INGEST_ATTRIBUTE_VALUE_LENGTH_LIMIT", "Characters kept of a string attribute value (bytes of a byte array) [default: 65536]";
    attribute_value_depth_limit: u64 => [ingest.attribute_value_depth_limit], "ingest-attribute-value-depth-limit", "OLLYSTACK_INGEST_ATTRIBUTE_VALUE_DEPTH_LIMIT", "Deepest array/map nesting kept in one value, 1..64 [default: 16]";
    attribute_value_element_limit: u64 => [ingest.attribute_value_element_limit], "ingest-attribute-value-element-limit", "OLLYSTACK_INGEST_ATTRIBUTE_VALUE_ELEMENT_LIMIT", "Array elements and map entries kept in one value, all levels together [default: 1024]";
    span_event_count_limit: u64 => [ingest.span_event_count_limit], "ingest-span-event-count-limit", "OLLYSTACK_INGEST_SPAN_EVENT_COUNT_LIMIT", "Events kept per span [default: 128]";
    span_link_count_limit: u64 => [ingest.span_link_count_limit], "ingest-span-link-count-limit", "OLLYSTACK_INGEST_SPAN_LINK_COUNT_LIMIT", "Links kept per span [default: 128]";
    log_body_length_limit: u64 => [ingest.log_body_length_limit], "ingest-log-body-length-limit", "OLLYSTACK_INGEST_LOG_BODY_LENGTH_LIMIT", "Characters kept of each string in a log body (bytes of a byte array) [default: 262144]";
}

/// `attr=N,attr2=M`: the `[limits] attributes` table as one flag value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeLimits(pub BTreeMap<String, u64>);

impl std::str::FromStr for AttributeLimits {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut limits = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, limit) = pair.rsplit_once('=').ok_or_else(|| format!("{pair:?}: expected attribute=limit"))?;
            let limit = limit.trim().parse::<u64>().map_err(|e| format!("{pair:?}: limit is not a number ({e})"))?;
            if limits.insert(name.trim().to_owned(), limit).is_some() {
                return Err(format!("{:?} is given twice", name.trim()));
            }
        }
        Ok(Self(limits))
    }
}

impl From<AttributeLimits> for BTreeMap<String, u64> {
    fn from(limits: AttributeLimits) -> Self {
        limits.0
    }
}
