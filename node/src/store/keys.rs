//! Key layouts of the sled trees. Tenants and correlation IDs are sanitized
//! to `[A-Za-z0-9_-]`, so a NUL byte separates fields unambiguously.

use crate::model::{CorrelationId, TenantId, TraceId};

/// `tenant \0 id \0`: prefix of every segment of one session.
pub fn session_prefix(tenant: &TenantId, id: &CorrelationId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.as_str().len() + id.as_str().len() + 2);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_str().as_bytes());
    k.push(0);
    k
}

/// `tenant \0 id \0 seq`.
pub fn segment_key(tenant: &TenantId, id: &CorrelationId, seq: u64) -> Vec<u8> {
    let mut k = session_prefix(tenant, id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `finished_ms seq`: the time index orders segments by when they finished.
pub fn time_key(finished_unix_ms: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&finished_unix_ms.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Longest service name a service-index key holds, in bytes: longer names
/// are cut (at a UTF-8 boundary is not needed: keys are bytes). Two names
/// cut to the same bytes share index entries; listings re-check the
/// filter on every entry, so that only costs a look.
const SERVICE_KEY_BYTES_MAX: usize = 256;

/// `tenant \0 len(u16) service`: prefix of one service's entries in the
/// service index (the length makes any byte in a name unambiguous).
pub fn service_prefix(tenant: &TenantId, service: &str) -> Vec<u8> {
    let name = &service.as_bytes()[..service.len().min(SERVICE_KEY_BYTES_MAX)];
    let mut k = Vec::with_capacity(tenant.as_str().len() + name.len() + 3);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    // At most SERVICE_KEY_BYTES_MAX: fits a u16.
    k.extend_from_slice(&(name.len() as u16).to_be_bytes());
    k.extend_from_slice(name);
    k
}

/// `tenant \0 trace_id`.
pub fn trace_key(tenant: &TenantId, trace: TraceId) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.as_str().len() + 17);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&trace.0);
    k
}

/// `tenant \0 id`.
pub fn alias_key(tenant: &TenantId, id: &CorrelationId) -> Vec<u8> {
    let mut k = session_prefix(tenant, id);
    k.pop();
    k
}

/// `tenant \0 metric \0`: prefix of one metric's exemplars.
pub fn metric_prefix(tenant: &TenantId, metric: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.as_str().len() + metric.len() + 2);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(metric.as_bytes());
    k.push(0);
    k
}

pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}
