//! Secondary indexes kept beside the archive:
//!
//! * [`TraceIndex`]: trace → the session it belongs to (trace unification),
//!   and alias: trace-derived ID → the explicit ID its trace joined.
//! * [`ExemplarIndex`]: metric → exemplars by event time, for
//!   `GET /api/v1/metrics/{name}/exemplars`.
//!
//! Every record carries the node-clock time it was written, so retention
//! can expire it.

use ollystack_proto::store::{IndexedExemplar, StoredExemplar};
use prost::Message;

use super::key_filter::KeyFilter;
use super::keys::{alias_key, metric_prefix, session_prefix, trace_key, u64_at};
use super::StoreError;
use crate::correlate::TraceBinding;
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{ExemplarFilter, ExemplarHit};

/// Alias chains longer than this are treated as broken (they cannot occur:
/// only derived IDs are aliased, only to explicit ones).
const MAX_ALIAS_HOPS: usize = 4;

#[derive(Debug)]
pub struct TraceIndex {
    traces: sled::Tree,
    aliases: sled::Tree,
    /// The reverse of `aliases`: `tenant \0 to \0 from` → time written.
    alias_sources: sled::Tree,
    /// Keys of `traces` and `aliases`: most lookups are of keys not there
    /// (a new trace; a session never merged away) and skip the read.
    bound: KeyFilter,
    aliased: KeyFilter,
}

impl TraceIndex {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let (traces, aliases) = (db.open_tree("traces")?, db.open_tree("aliases")?);
        let bound = KeyFilter::build(|| traces.iter().keys())?;
        let aliased = KeyFilter::build(|| aliases.iter().keys())?;
        Ok(Self { traces, aliases, alias_sources: db.open_tree("alias_sources")?, bound, aliased })
    }

    pub fn binding(&self, tenant: &TenantId, trace: TraceId) -> Result<Option<TraceBinding>, StoreError> {
        let key = trace_key(tenant, trace);
        if !self.bound.may_contain(&key) {
            return Ok(None);
        }
        self.traces.get(key)?.map(|v| decode_binding(&v)).transpose()
    }

    /// Records a trace's session. The caller decided (under the node's
    /// binding lock) that this replaces what was there.
    pub fn bind(&self, tenant: &TenantId, trace: TraceId, binding: &TraceBinding, now_unix_ms: u64) -> Result<(), StoreError> {
        let mut v = Vec::with_capacity(9 + binding.id.as_str().len());
        v.push(u8::from(binding.explicit));
        v.extend_from_slice(&now_unix_ms.to_be_bytes());
        v.extend_from_slice(binding.id.as_str().as_bytes());
        let key = trace_key(tenant, trace);
        self.bound.insert_then(&key, || self.traces.insert(&key, v))?;
        Ok(())
    }

    /// Drops the trace's binding if it is still `expected` (a binding
    /// another node now holds); a changed one stays.
    pub fn remove_if(&self, tenant: &TenantId, trace: TraceId, expected: &TraceBinding) -> Result<bool, StoreError> {
        let key = trace_key(tenant, trace);
        let Some(current) = self.traces.get(&key)? else {
            return Ok(false);
        };
        if decode_binding(&current)? != *expected {
            return Ok(false);
        }
        Ok(self.traces.compare_and_swap(key, Some(current), None::<&[u8]>)?.is_ok())
    }

    /// Up to `limit` bindings after the key `after` (from the start when
    /// `None`), in key order, with the key to continue from.
    #[allow(clippy::type_complexity)]
    pub fn bindings_after(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<(TenantId, TraceId, TraceBinding)>, Option<Vec<u8>>), StoreError> {
        let range = match after {
            Some(k) => self.traces.range::<&[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => self.traces.iter(),
        };
        let mut out = Vec::new();
        let mut last = None;
        for item in range.take(limit) {
            let (k, _) = item?;
            let split = k.iter().position(|b| *b == 0);
            let parsed = split.and_then(|at| Some((std::str::from_utf8(&k[..at]).ok()?, TraceId::from_bytes(&k[at + 1..])?)));
            if let Some((tenant, trace)) = parsed {
                let tenant = TenantId::from_trusted(tenant);
                if let Some(binding) = self.binding(&tenant, trace)? {
                    out.push((tenant, trace, binding));
                }
            }
            last = Some(k.to_vec());
        }
        Ok((out, last))
    }

    /// Records that the trace-derived session `from` was merged into `to`.
    pub fn set_alias(&self, tenant: &TenantId, from: &CorrelationId, to: &CorrelationId, now_unix_ms: u64) -> Result<(), StoreError> {
        debug_assert!(crate::correlate::is_olly_id(from.as_str()), "only derived IDs merge away: {from}");
        let mut v = Vec::with_capacity(8 + to.as_str().len());
        v.extend_from_slice(&now_unix_ms.to_be_bytes());
        v.extend_from_slice(to.as_str().as_bytes());
        let mut source = session_prefix(tenant, to);
        source.extend_from_slice(from.as_str().as_bytes());
        self.alias_sources.insert(source, &now_unix_ms.to_be_bytes())?;
        let key = alias_key(tenant, from);
        self.aliased.insert_then(&key, || self.aliases.insert(&key, v))?;
        Ok(())
    }

    /// The session `id` was merged into, if any. Only trace-derived IDs
    /// (`olly-` format) are ever merged away, so any other ID is answered
    /// without a read (every session close asks).
    pub fn alias_of(&self, tenant: &TenantId, id: &CorrelationId) -> Result<Option<CorrelationId>, StoreError> {
        if !crate::correlate::is_olly_id(id.as_str()) {
            return Ok(None);
        }
        let key = alias_key(tenant, id);
        if !self.aliased.may_contain(&key) {
            return Ok(None);
        }
        let Some(v) = self.aliases.get(key)? else {
            return Ok(None);
        };
        let to = std::str::from_utf8(v.get(8..).unwrap_or_default())
            .map_err(|e| StoreError::Corrupt { tree: "aliases", detail: e.to_string() })?;
        Ok(Some(CorrelationId::from_trusted(to)))
    }

    /// The IDs aliased to `to` (trace-derived sessions whose trace joined it).
    pub fn aliased_into(&self, tenant: &TenantId, to: &CorrelationId) -> Result<Vec<CorrelationId>, StoreError> {
        let prefix = session_prefix(tenant, to);
        self.alias_sources
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, _) = item?;
                let from = std::str::from_utf8(&k[prefix.len()..])
                    .map_err(|e| StoreError::Corrupt { tree: "alias_sources", detail: e.to_string() })?;
                Ok(CorrelationId::from_trusted(from))
            })
            .collect()
    }

    /// The ID a session's data lives under: `id`, or where its alias leads.
    pub fn resolve(&self, tenant: &TenantId, id: &CorrelationId) -> Result<CorrelationId, StoreError> {
        let mut current = id.clone();
        for _ in 0..MAX_ALIAS_HOPS {
            match self.alias_of(tenant, &current)? {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        Ok(current)
    }

    /// Drops trace bindings and aliases written before `cutoff_unix_ms`,
    /// then rebuilds the key filters without them.
    pub fn expire(&self, cutoff_unix_ms: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for (tree, at) in [(&self.traces, 1), (&self.aliases, 0), (&self.alias_sources, 0)] {
            for item in tree.iter() {
                let (k, v) = item?;
                if u64_at(&v, at).unwrap_or(0) < cutoff_unix_ms {
                    tree.remove(k)?;
                    removed += 1;
                }
            }
        }
        self.bound.rebuild(|| self.traces.iter().keys())?;
        self.aliased.rebuild(|| self.aliases.iter().keys())?;
        Ok(removed)
    }

    /// Memory the key filters hold, in bytes.
    pub fn filter_bytes(&self) -> usize {
        self.bound.bytes() + self.aliased.bytes()
    }
}

/// A binding as stored: explicit flag, time written, ID.
fn decode_binding(v: &[u8]) -> Result<TraceBinding, StoreError> {
    let id =
        std::str::from_utf8(v.get(9..).unwrap_or_default()).map_err(|e| StoreError::Corrupt { tree: "traces", detail: e.to_string() })?;
    Ok(TraceBinding { id: CorrelationId::from_trusted(id), explicit: v.first() == Some(&1) })
}

#[derive(Debug)]
pub struct ExemplarIndex {
    tree: sled::Tree,
}

impl ExemplarIndex {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self { tree: db.open_tree("exemplars")? })
    }

    /// Indexes exemplars of one session. Keys end with the WAL entry's seq
    /// and the exemplar's position in it, so replaying the WAL re-indexes
    /// idempotently.
    pub fn add(
        &self,
        tenant: &TenantId,
        id: &CorrelationId,
        exemplars: &[StoredExemplar],
        wal_seq: u64,
        now_unix_ms: u64,
    ) -> Result<(), StoreError> {
        for (i, ex) in exemplars.iter().enumerate() {
            let mut key = metric_prefix(tenant, &ex.metric_name);
            key.extend_from_slice(&ex.time_unix_nano.to_be_bytes());
            key.extend_from_slice(&wal_seq.to_be_bytes());
            key.extend_from_slice(&(i as u32).to_be_bytes());
            let mut value = now_unix_ms.to_be_bytes().to_vec();
            IndexedExemplar { correlation_id: id.as_str().to_owned(), exemplar: Some(ex.clone()) }
                .encode(&mut value)
                .map_err(|e| StoreError::Corrupt { tree: "exemplars", detail: e.to_string() })?;
            self.tree.insert(key, value)?;
        }
        Ok(())
    }

    /// Exemplars of one metric in an event-time window, oldest first.
    pub fn query(&self, tenant: &TenantId, filter: &ExemplarFilter) -> Result<Vec<ExemplarHit>, StoreError> {
        let prefix = metric_prefix(tenant, &filter.metric_name);
        let mut start = prefix.clone();
        start.extend_from_slice(&filter.start_unix_nano.unwrap_or(0).to_be_bytes());
        let mut end = prefix.clone();
        end.extend_from_slice(&filter.end_unix_nano.unwrap_or(u64::MAX).to_be_bytes());
        end.extend_from_slice(&u64::MAX.to_be_bytes());
        end.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut out = Vec::new();
        for item in self.tree.range(start..=end) {
            if out.len() >= filter.limit {
                break;
            }
            let (_, v) = item?;
            let rec = IndexedExemplar::decode(v.get(8..).unwrap_or_default())
                .map_err(|e| StoreError::Corrupt { tree: "exemplars", detail: e.to_string() })?;
            let Some(exemplar) = rec.exemplar else { continue };
            if filter.service.as_ref().is_some_and(|s| *s != exemplar.service_name) {
                continue;
            }
            out.push(ExemplarHit { correlation_id: CorrelationId::from_trusted(rec.correlation_id), exemplar });
        }
        Ok(out)
    }

    /// Drops exemplars indexed before `cutoff_unix_ms`.
    pub fn expire(&self, cutoff_unix_ms: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            if u64_at(&v, 0).unwrap_or(0) < cutoff_unix_ms {
                self.tree.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
