//! How a node reaches ClickHouse and how it batches its writes there.

use std::time::Duration;

use crate::secret::Secret;

/// Validated ClickHouse settings (from the `[clickhouse]` config section).
#[derive(Debug, Clone, PartialEq)]
pub struct ClickHouseSettings {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding OllyStack's tables; created by `migrate` if missing.
    /// Validated as an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// LZ4-compress requests and answers (ClickHouse's own framing).
    pub compression: bool,
    /// Apply pending migrations when the node starts.
    pub migrate_on_start: bool,
    /// Rows older than this (by event time) expire through table TTLs.
    pub ttl_days: u32,
    /// A flush batch closes at whichever bound it reaches first.
    pub batch_max_rows: usize,
    pub batch_max_bytes: usize,
    pub batch_max_delay: Duration,
    /// Failed inserts are retried with exponential backoff between these.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Deadline of one HTTP request to ClickHouse.
    pub request_timeout: Duration,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "ollystack".into(),
            user: "default".into(),
            password: Secret::default(),
            compression: true,
            migrate_on_start: true,
            ttl_days: 7,
            batch_max_rows: 50_000,
            batch_max_bytes: 32 << 20,
            batch_max_delay: Duration::from_millis(1_000),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClickHouseSettings {
    /// A client for these settings, with the database selected.
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client without a database selected (to create it).
    pub fn server_client(&self) -> clickhouse::Client {
        let compression = if self.compression { clickhouse::Compression::Lz4 } else { clickhouse::Compression::None };
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(self.password.expose())
            .with_compression(compression)
    }
}

/// Whether `name` is a plain ClickHouse identifier (safe to put in DDL).
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("ollystack"));
        assert!(is_identifier("_db_2"));
        for bad in ["", "2db", "db-x", "db;DROP", "db name", "`db`"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
