//! What the limiter limits, shared by the replicated state and every node.

use std::collections::BTreeMap;

/// At most this many limited attributes.
pub const MAX_ATTRIBUTES: usize = 64;
/// At most this many distinct values per attribute per window: bounds the
/// state's and each node's memory.
pub const MAX_VALUES_PER_WINDOW: u64 = 1_000_000;

/// A time window: windows are `window_ms` long and aligned to the Unix epoch,
/// so every node computes the same window for the same instant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Window(pub u64);

/// Why a limiter configuration is invalid; names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("window_ms = {0}: must be at least 1")]
    WindowMs(u64),
    #[error("lease_units = {0}: must be at least 1")]
    LeaseUnits(u64),
    #[error("{count} limited attributes: at most {MAX_ATTRIBUTES}")]
    TooManyAttributes { count: usize },
    #[error("limit of {attribute:?} = {limit}: must be 1..={MAX_VALUES_PER_WINDOW}")]
    Limit { attribute: String, limit: u64 },
}

/// The limits, immutable once validated. Deserializing validates too (it
/// goes through [`LimiterConfig::new`]), so a stored config cannot bypass it.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "LimiterConfigRecord")]
pub struct LimiterConfig {
    /// Length of a window.
    window_ms: u64,
    /// The fewest units a node asks for per lease request; it asks for more
    /// as its rate of new values needs (see [`LeaseSizer`](super::LeaseSizer)).
    /// Larger means fewer Raft round trips at low rates, smaller fewer units
    /// stranded on idle nodes. (Before adaptive leases, the fixed size of
    /// every request: a log's `SetLimits` keeps its meaning as a floor.)
    lease_units: u64,
    /// Attribute name → distinct values allowed per window.
    limits: BTreeMap<String, u64>,
}

/// The unvalidated serialized form of [`LimiterConfig`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimiterConfigRecord {
    window_ms: u64,
    lease_units: u64,
    limits: BTreeMap<String, u64>,
}

impl TryFrom<LimiterConfigRecord> for LimiterConfig {
    type Error = ConfigError;

    fn try_from(record: LimiterConfigRecord) -> Result<Self, ConfigError> {
        Self::new(record.window_ms, record.lease_units, record.limits)
    }
}

impl LimiterConfig {
    pub fn new(window_ms: u64, lease_units: u64, limits: impl IntoIterator<Item = (String, u64)>) -> Result<Self, ConfigError> {
        if window_ms == 0 {
            return Err(ConfigError::WindowMs(window_ms));
        }
        if lease_units == 0 {
            return Err(ConfigError::LeaseUnits(lease_units));
        }
        let limits: BTreeMap<String, u64> = limits.into_iter().collect();
        if limits.len() > MAX_ATTRIBUTES {
            return Err(ConfigError::TooManyAttributes { count: limits.len() });
        }
        if let Some((attribute, &limit)) = limits.iter().find(|(_, &limit)| limit == 0 || limit > MAX_VALUES_PER_WINDOW) {
            return Err(ConfigError::Limit { attribute: attribute.clone(), limit });
        }
        Ok(Self { window_ms, lease_units, limits })
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    pub fn lease_units(&self) -> u64 {
        self.lease_units
    }

    /// The limit of `attribute`, `None` when it is not limited.
    pub fn limit(&self, attribute: &str) -> Option<u64> {
        self.limits.get(attribute).copied()
    }

    /// The limited attributes and their limits, by name.
    pub fn limits(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.limits.iter().map(|(attribute, &limit)| (attribute.as_str(), limit))
    }

    /// The window that contains `now_unix_ms`.
    pub fn window_at(&self, now_unix_ms: u64) -> Window {
        Window(now_unix_ms / self.window_ms)
    }

    /// The `before_window` of the [`Expire`](super::Command::Expire) a leader
    /// proposes at `now_unix_ms`: keeps the current and the previous window.
    pub fn expire_before(&self, now_unix_ms: u64) -> Window {
        Window(self.window_at(now_unix_ms).0.saturating_sub(1))
    }
}
