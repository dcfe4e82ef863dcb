//! Attribute cardinality limits as ingest sees them: a small trait that
//! decides one value, and the pure rewriting of an attribute list by its
//! verdicts. The cluster-wide implementation is
//! [`ClusterLimiter`](crate::cluster::ClusterLimiter); prepare only knows
//! this trait, so it stays testable with a fake.
//!
//! What is limited: the attributes of spans and of log records, the ones
//! stored with each signal. Resource attributes are not: a node keeps only
//! `service.name` of a resource, and that names the session's service, which
//! an overflow marker must not replace. Exemplar labels and metrics are not
//! limited either (exemplars are kept only when they join a session).
//!
//! A value is limited when its key is limited and it is a string or a
//! scalar (int, double, bool; compared as their text). Arrays, maps and
//! bytes pass as they are. Limits apply after semantic-convention
//! migration (keys are the current names) and after the correlation ID and
//! the tenant were read, so a limit never changes which session a signal
//! joins, only what is stored.

use std::borrow::Cow;

use ollystack_cluster::admission::OVERFLOW_VALUE;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

use super::{IngestError, Overload};

/// The decision for one attribute value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Within the limit (or not limited): keep the value.
    Keep,
    /// Past the limit: write [`OVERFLOW_VALUE`] instead.
    Overflow,
    /// Cannot be decided now (no quota and none came in time): refuse the
    /// batch with a retryable error rather than replace a value that may be
    /// within the limit.
    Wait,
}

/// Decides attribute values against the configured limits. Called on the
/// blocking ingest thread; [`admit`](Self::admit) may block for a bounded
/// time.
pub trait AttributeLimiter: Send + Sync + std::fmt::Debug {
    /// Whether values of `key` are limited (cheap, no lock).
    fn limits(&self, key: &str) -> bool;
    /// The verdict on `value` of a limited `key`.
    fn admit(&self, key: &str, value: &str) -> Verdict;
}

/// No attribute is limited.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLimits;

impl AttributeLimiter for NoLimits {
    fn limits(&self, _key: &str) -> bool {
        false
    }

    fn admit(&self, _key: &str, _value: &str) -> Verdict {
        Verdict::Keep
    }
}

/// A value got [`Verdict::Wait`]: the batch must be refused (retryable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MustWait {
    /// The attribute whose value could not be decided.
    pub attribute: String,
}

/// How long a client refused for want of limiter quota is asked to wait.
const MUST_WAIT_RETRY_AFTER_MS: u64 = 1_000;

impl From<MustWait> for IngestError {
    fn from(wait: MustWait) -> Self {
        IngestError::Overloaded { reason: Overload::LimitQuota { attribute: wait.attribute }, retry_after_ms: MUST_WAIT_RETRY_AFTER_MS }
    }
}

/// Applies the limits to `attrs`: every limited value past its limit is
/// replaced by [`OVERFLOW_VALUE`]. Returns how many were replaced, or stops
/// at the first value that must wait (earlier replacements stay; the caller
/// drops the whole batch).
pub fn limit_attributes(limiter: &dyn AttributeLimiter, attrs: &mut [KeyValue]) -> Result<u32, MustWait> {
    let mut replaced = 0;
    for kv in attrs.iter_mut().filter(|kv| limiter.limits(&kv.key)) {
        let Some(text) = limited_text(kv.value.as_ref()) else { continue };
        match limiter.admit(&kv.key, &text) {
            Verdict::Keep => {}
            Verdict::Overflow => {
                kv.value = Some(AnyValue { value: Some(Value::StringValue(OVERFLOW_VALUE.to_owned())) });
                replaced += 1;
            }
            Verdict::Wait => return Err(MustWait { attribute: kv.key.clone() }),
        }
    }
    Ok(replaced)
}

/// The text a limited value is counted by: strings as they are, scalars
/// as their text; `None` for values that are not limited.
fn limited_text(value: Option<&AnyValue>) -> Option<Cow<'_, str>> {
    match value?.value.as_ref()? {
        Value::StringValue(s) => Some(Cow::Borrowed(s)),
        Value::IntValue(i) => Some(Cow::Owned(i.to_string())),
        Value::DoubleValue(d) => Some(Cow::Owned(d.to_string())),
        Value::BoolValue(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::BytesValue(_) | Value::ArrayValue(_) | Value::KvlistValue(_) | Value::StringValueStrindex(_) => None,
    }
}

#[cfg(test)]
#[path = "limit_test.rs"]
mod limit_test;
