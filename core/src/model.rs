//! Identifier newtypes shared by every module, so IDs are never bare strings.

use std::fmt;
use std::sync::Arc;

/// A validated correlation ID: the key of a correlation session.
///
/// Only the `correlate` module builds these from untrusted input (after
/// validation); everything downstream can rely on the value being sanitized
/// (at most `max_id_length` bytes of `[A-Za-z0-9_-]`).
/// `Deserialize` is for answers from peer nodes (trusted, like storage).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// Wraps an already validated value. Callers outside `correlate` use this
    /// only for values that came from our own storage (WAL, archive).
    pub fn from_trusted(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({})", self.0)
    }
}

/// A tenant. `default` when tenancy is off or the data names no tenant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TenantId(Arc<str>);

impl TenantId {
    pub const DEFAULT: &'static str = "default";

    /// The default tenant. Shared: it is asked for once per signal.
    pub fn default_tenant() -> Self {
        static DEFAULT: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(TenantId::DEFAULT));
        Self(DEFAULT.clone())
    }

    pub fn from_trusted(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

/// A W3C trace ID (16 bytes). All zero is invalid in OTLP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

impl TraceId {
    /// Parses OTLP bytes; `None` unless exactly 16 bytes and not all zero.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 16] = bytes.try_into().ok()?;
        (arr != [0; 16]).then_some(Self(arr))
    }

    /// Parses 32 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Self::from_bytes(&bytes)
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}

/// A span ID (8 bytes). All zero is invalid in OTLP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

impl SpanId {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 8] = bytes.try_into().ok()?;
        (arr != [0; 8]).then_some(Self(arr))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

/// Which session a signal belongs to: a correlation ID within a tenant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SessionKey {
    pub tenant: TenantId,
    pub id: CorrelationId,
}

/// How the correlation ID of a signal was found (precedence order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    ResourceAttribute,
    SpanAttribute,
    Header,
    Baggage,
    LogBody,
    /// The ID its trace already has (an explicit ID seen on another signal).
    Trace,
    /// Derived from the trace ID (pure function of it).
    Derived,
    /// Generated: the signal had neither an ID nor a trace ID.
    Generated,
}

impl IdSource {
    /// Explicit sources name the session directly; a trace that carries one
    /// joins that session (trace unification).
    pub fn is_explicit(self) -> bool {
        matches!(self, Self::ResourceAttribute | Self::SpanAttribute | Self::Header | Self::Baggage | Self::LogBody)
    }
}
