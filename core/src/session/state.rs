//! The data of one live session segment, held compactly: every span and log
//! record stays in its OTLP protobuf encoding (one boxed byte slice) next to
//! a 2-byte index into the segment's service table. Re-delivered signals are
//! recognised and stored once. Pure: no actors, no clock reads.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ollystack_proto::store::{ArchivedSegment, StoredExemplar, StoredLog, StoredSpan, WalEntry};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use prost::Message;

use super::finished::FinishedSegment;
use super::segment::Segment;
use super::summary::Summary;
use crate::model::{SessionKey, SpanId, TraceId};

/// Memory charged per span or log beyond its encoded bytes: the entry in the
/// item vector, the de-duplication key and the allocation header.
pub const ITEM_OVERHEAD_BYTES: u64 = 64;
/// Memory charged per exemplar (it is held decoded).
pub const EXEMPLAR_COST_BYTES: u64 = 160;

/// Severity number of ERROR in the OTLP log data model.
const SEVERITY_ERROR: i32 = 17;

/// A span on its way into a session, with the facts the summary needs
/// (taken while the span was decoded anyway).
#[derive(Debug, Clone)]
pub struct SpanInput {
    pub service: Arc<str>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub is_error: bool,
    /// The span's name when it has no parent (a root span).
    pub root_name: Option<Box<str>>,
    /// The encoded `Span`.
    pub encoded: Box<[u8]>,
}

impl SpanInput {
    pub fn from_span(service: Arc<str>, span: &Span, encoded: Box<[u8]>) -> Option<Self> {
        Some(Self {
            service,
            trace_id: TraceId::from_bytes(&span.trace_id)?,
            span_id: SpanId::from_bytes(&span.span_id)?,
            start_unix_nano: span.start_time_unix_nano,
            end_unix_nano: span.end_time_unix_nano,
            is_error: span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32),
            root_name: SpanId::from_bytes(&span.parent_span_id).is_none().then(|| span.name.clone().into()),
            encoded,
        })
    }

    /// Rebuilds the input from a stored span (WAL replay, merges).
    pub fn from_stored(stored: &StoredSpan) -> Option<Self> {
        let span = Span::decode(stored.span.as_slice()).ok()?;
        Self::from_span(Arc::from(stored.service_name.as_str()), &span, stored.span.clone().into())
    }

    pub fn cost_bytes(&self) -> u64 {
        self.encoded.len() as u64 + ITEM_OVERHEAD_BYTES
    }
}

/// A log record on its way into a session.
#[derive(Debug, Clone)]
pub struct LogInput {
    pub service: Arc<str>,
    pub time_unix_nano: u64,
    pub is_error: bool,
    /// The encoded `LogRecord`.
    pub encoded: Box<[u8]>,
}

impl LogInput {
    pub fn from_log(service: Arc<str>, log: &LogRecord, encoded: Box<[u8]>) -> Self {
        let time = if log.time_unix_nano > 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
        Self { service, time_unix_nano: time, is_error: log.severity_number >= SEVERITY_ERROR, encoded }
    }

    pub fn from_stored(stored: &StoredLog) -> Option<Self> {
        let log = LogRecord::decode(stored.log.as_slice()).ok()?;
        Some(Self::from_log(Arc::from(stored.service_name.as_str()), &log, stored.log.clone().into()))
    }

    pub fn cost_bytes(&self) -> u64 {
        self.encoded.len() as u64 + ITEM_OVERHEAD_BYTES
    }
}

/// Everything one batch brings to one session.
#[derive(Debug, Clone, Default)]
pub struct SessionInput {
    /// The WAL entry holding these signals (None only in tests).
    pub wal_key: Option<u64>,
    pub spans: Vec<SpanInput>,
    pub logs: Vec<LogInput>,
    pub exemplars: Vec<StoredExemplar>,
}

impl SessionInput {
    pub fn cost_bytes(&self) -> u64 {
        self.spans.iter().map(SpanInput::cost_bytes).sum::<u64>()
            + self.logs.iter().map(LogInput::cost_bytes).sum::<u64>()
            + self.exemplars.len() as u64 * EXEMPLAR_COST_BYTES
    }

    /// Cuts the input into parts of at most `max_spans` spans and `max_logs`
    /// log records (exemplars go with the first part), so one huge batch
    /// for one ID becomes several WAL entries and segments of a bounded
    /// size instead of one (a segment finishes once it holds `max_spans`;
    /// a full segment hands later parts to the next one, so a segment
    /// holds at most about twice the bound).
    pub fn split(self, max_spans: usize, max_logs: usize) -> Vec<SessionInput> {
        let (max_spans, max_logs) = (max_spans.max(1), max_logs.max(1));
        if self.spans.len() <= max_spans && self.logs.len() <= max_logs {
            return vec![self];
        }
        let parts = self.spans.len().div_ceil(max_spans).max(self.logs.len().div_ceil(max_logs)).max(1);
        let mut out: Vec<SessionInput> = (0..parts).map(|_| SessionInput { wal_key: self.wal_key, ..Default::default() }).collect();
        for (i, span) in self.spans.into_iter().enumerate() {
            out[i / max_spans].spans.push(span);
        }
        for (i, log) in self.logs.into_iter().enumerate() {
            out[i / max_logs].logs.push(log);
        }
        out[0].exemplars = self.exemplars;
        out
    }

    /// Rebuilds the input of a WAL entry. Records that no longer decode are
    /// skipped (they were validated before they were written).
    pub fn from_wal(key: u64, entry: &WalEntry) -> Self {
        Self {
            wal_key: Some(key),
            spans: entry.spans.iter().filter_map(SpanInput::from_stored).collect(),
            logs: entry.logs.iter().filter_map(LogInput::from_stored).collect(),
            exemplars: entry.exemplars.clone(),
        }
    }
}

/// A stored item: service index plus encoded bytes.
#[derive(Debug, Clone)]
struct Item {
    service: u16,
    encoded: Box<[u8]>,
}

/// Result of absorbing input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Absorbed {
    /// Signals dropped as re-deliveries of ones already held.
    pub duplicates: u64,
    /// Memory reserved for those duplicates, to give back to the budget.
    pub freed_bytes: u64,
}

/// One live session segment.
#[derive(Debug)]
pub struct SessionState {
    pub key: SessionKey,
    pub opened_unix_ms: u64,
    pub last_activity_unix_ms: u64,
    pub summary: Summary,
    /// WAL entries whose signals this segment holds; removed on archive.
    pub wal_keys: Vec<u64>,
    /// Bytes reserved from the memory budget for this segment.
    pub held_bytes: u64,
    services: Vec<Arc<str>>,
    spans: Vec<Item>,
    span_keys: HashSet<(TraceId, SpanId)>,
    logs: Vec<Item>,
    /// Hash of (service, bytes) → index of the first log with that hash.
    log_hashes: HashMap<u64, u32>,
    exemplars: Vec<StoredExemplar>,
}

impl SessionState {
    pub fn new(key: SessionKey, now_unix_ms: u64) -> Self {
        Self {
            key,
            opened_unix_ms: now_unix_ms,
            last_activity_unix_ms: now_unix_ms,
            summary: Summary::default(),
            wal_keys: Vec::new(),
            held_bytes: 0,
            services: Vec::new(),
            spans: Vec::new(),
            span_keys: HashSet::new(),
            logs: Vec::new(),
            log_hashes: HashMap::new(),
            exemplars: Vec::new(),
        }
    }

    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    pub fn log_count(&self) -> usize {
        self.logs.len()
    }

    /// Takes in a batch's signals. The input's memory has been reserved by
    /// the caller; duplicates hand their share back via [`Absorbed`].
    pub fn absorb(&mut self, input: SessionInput, now_unix_ms: u64) -> Absorbed {
        let mut out = Absorbed::default();
        self.last_activity_unix_ms = self.last_activity_unix_ms.max(now_unix_ms);
        self.wal_keys.extend(input.wal_key);
        self.held_bytes += input.cost_bytes();
        for span in input.spans {
            if !self.span_keys.insert((span.trace_id, span.span_id)) {
                out.duplicates += 1;
                out.freed_bytes += span.cost_bytes();
                continue;
            }
            let service = self.service_index(&span.service);
            self.summary.observe_span(&span.service, span.start_unix_nano, span.end_unix_nano, span.is_error, span.root_name.as_deref());
            self.spans.push(Item { service, encoded: span.encoded });
        }
        for log in input.logs {
            let service = self.service_index(&log.service);
            if self.is_duplicate_log(service, &log.encoded) {
                out.duplicates += 1;
                out.freed_bytes += log.cost_bytes();
                continue;
            }
            self.summary.observe_log(&log.service, log.time_unix_nano, log.is_error);
            self.logs.push(Item { service, encoded: log.encoded });
        }
        for ex in input.exemplars {
            if self.exemplars.iter().any(|e| same_exemplar(e, &ex)) {
                out.duplicates += 1;
                out.freed_bytes += EXEMPLAR_COST_BYTES;
                continue;
            }
            self.service_index(&Arc::from(ex.service_name.as_str()));
            self.summary.observe_exemplar(&ex.service_name, ex.time_unix_nano);
            self.exemplars.push(ex);
        }
        self.held_bytes -= out.freed_bytes;
        out
    }

    /// Takes in another segment of the same session (trace unification).
    pub fn absorb_segment(&mut self, other: SessionState, now_unix_ms: u64) -> Absorbed {
        let input = SessionInput {
            wal_key: None,
            spans: other.stored_spans().iter().filter_map(SpanInput::from_stored).collect(),
            logs: other.stored_logs().iter().filter_map(LogInput::from_stored).collect(),
            exemplars: other.exemplars,
        };
        self.wal_keys.extend(other.wal_keys);
        self.opened_unix_ms = self.opened_unix_ms.min(other.opened_unix_ms);
        self.absorb(input, now_unix_ms)
    }

    /// A copy of the data for a query.
    pub fn to_segment(&self) -> Segment {
        Segment { live: true, spans: self.stored_spans(), logs: self.stored_logs(), exemplars: self.exemplars.clone() }
    }

    /// The encoded `ArchivedSegment` of this segment, written straight from
    /// the held buffers (equal to encoding [`Self::to_archived`]).
    pub fn encode_archived(&self, segment_seq: u64, finished_unix_ms: u64, reason: &str) -> Vec<u8> {
        use ollystack_proto::wire::{put_bytes, put_record, put_u64};
        let mut buf = Vec::with_capacity(self.held_bytes as usize + 128);
        put_bytes(&mut buf, 1, self.key.tenant.as_str().as_bytes());
        put_bytes(&mut buf, 2, self.key.id.as_str().as_bytes());
        put_u64(&mut buf, 3, segment_seq);
        put_u64(&mut buf, 4, self.opened_unix_ms);
        put_u64(&mut buf, 5, finished_unix_ms);
        if !reason.is_empty() {
            put_bytes(&mut buf, 6, reason.as_bytes());
        }
        for i in &self.spans {
            put_record(&mut buf, 7, &self.services[i.service as usize], &i.encoded);
        }
        for i in &self.logs {
            put_record(&mut buf, 8, &self.services[i.service as usize], &i.encoded);
        }
        for e in &self.exemplars {
            prost::encoding::message::encode(9, e, &mut buf);
        }
        prost::encoding::uint64::encode_packed(10, &self.wal_keys, &mut buf);
        buf
    }

    /// The segment's signals as one encoded `WalEntry` under `key` (shipping
    /// a session to the node that owns it).
    pub fn encode_wal_entry(&self, key: &SessionKey) -> Vec<u8> {
        use ollystack_proto::wire::{put_bytes, put_record};
        let mut buf = Vec::with_capacity(self.held_bytes as usize + 128);
        put_bytes(&mut buf, 1, key.tenant.as_str().as_bytes());
        put_bytes(&mut buf, 2, key.id.as_str().as_bytes());
        for i in &self.spans {
            put_record(&mut buf, 3, &self.services[i.service as usize], &i.encoded);
        }
        for i in &self.logs {
            put_record(&mut buf, 4, &self.services[i.service as usize], &i.encoded);
        }
        for e in &self.exemplars {
            prost::encoding::message::encode(5, e, &mut buf);
        }
        buf
    }

    /// This segment as it goes to storage.
    pub fn to_finished(&self, seq: u64, finished_unix_ms: u64, reason: &'static str) -> FinishedSegment {
        FinishedSegment {
            key: self.key.clone(),
            seq,
            opened_unix_ms: self.opened_unix_ms,
            finished_unix_ms,
            last_activity_unix_ms: self.last_activity_unix_ms,
            reason,
            summary: self.summary.clone(),
            encoded: self.encode_archived(seq, finished_unix_ms, reason),
            wal_keys: self.wal_keys.clone(),
            held_bytes: self.held_bytes,
        }
    }

    /// The archived form of this segment.
    pub fn to_archived(&self, segment_seq: u64, finished_unix_ms: u64, reason: &str) -> ArchivedSegment {
        ArchivedSegment {
            tenant_id: self.key.tenant.as_str().to_owned(),
            correlation_id: self.key.id.as_str().to_owned(),
            segment_seq,
            opened_unix_ms: self.opened_unix_ms,
            finished_unix_ms,
            finish_reason: reason.to_owned(),
            spans: self.stored_spans(),
            logs: self.stored_logs(),
            exemplars: self.exemplars.clone(),
            wal_keys: self.wal_keys.clone(),
        }
    }

    /// Copies of the held spans.
    /// Each held span as (service, encoded OTLP span), without copying.
    pub fn span_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.spans.iter().map(|i| (&*self.services[i.service as usize], &*i.encoded))
    }

    pub fn stored_spans(&self) -> Vec<StoredSpan> {
        self.spans
            .iter()
            .map(|i| StoredSpan { service_name: self.services[i.service as usize].to_string(), span: i.encoded.to_vec() })
            .collect()
    }

    fn stored_logs(&self) -> Vec<StoredLog> {
        self.logs
            .iter()
            .map(|i| StoredLog { service_name: self.services[i.service as usize].to_string(), log: i.encoded.to_vec() })
            .collect()
    }

    fn service_index(&mut self, service: &Arc<str>) -> u16 {
        if let Some(i) = self.services.iter().position(|s| s == service) {
            return i as u16;
        }
        // More than 65k services in one session would be a broken producer;
        // they share the last slot's name rather than growing without bound.
        if self.services.len() >= u16::MAX as usize {
            return u16::MAX - 1;
        }
        self.services.push(service.clone());
        (self.services.len() - 1) as u16
    }

    fn is_duplicate_log(&mut self, service: u16, encoded: &[u8]) -> bool {
        let mut h = std::hash::DefaultHasher::new();
        (service, encoded).hash(&mut h);
        let hash = h.finish();
        match self.log_hashes.get(&hash) {
            Some(&i) => {
                let held = &self.logs[i as usize];
                // Same hash but different bytes: a genuine collision, keep both.
                held.service == service && *held.encoded == *encoded
            }
            None => {
                self.log_hashes.insert(hash, self.logs.len() as u32);
                false
            }
        }
    }
}

fn same_exemplar(a: &StoredExemplar, b: &StoredExemplar) -> bool {
    a.metric_name == b.metric_name
        && a.time_unix_nano == b.time_unix_nano
        && a.trace_id == b.trace_id
        && a.span_id == b.span_id
        && a.value.to_bits() == b.value.to_bits()
}

#[cfg(test)]
mod tests;
