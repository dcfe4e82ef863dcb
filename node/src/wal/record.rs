//! What the WAL holds: session entries (an encoded `WalEntry`), and the
//! trace-index changes that must survive a crash with them (aliases from a
//! trace-derived ID to the explicit ID its trace joined, and trace
//! bindings, explicit or derived), so a replay puts every entry in the same
//! session as before and a trace that later joins an explicit ID still
//! finds the derived session it must merge.

use ollystack_cluster::NodeId;
use ollystack_proto::store::WalEntry;
use prost::Message;

use crate::model::{CorrelationId, SessionKey, TenantId, TraceId};
use crate::session::SessionInput;

#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// An encoded `WalEntry`: one batch's signals for one session.
    Entry(Vec<u8>),
    /// Signals of `from` belong to `to` (trace unification).
    Alias { tenant: TenantId, from: CorrelationId, to: CorrelationId },
    /// A trace carries the ID `id`: an explicit one, or (`explicit` false)
    /// the ID derived from the trace, which a replay restores only where
    /// the trace has no binding.
    Binding { tenant: TenantId, trace: TraceId, id: CorrelationId, explicit: bool },
    /// The entries appended with this record came in the shipment
    /// (sending node, its shipment ID): a replay records the shipment as
    /// taken, so a retry that arrives after a crash is not taken twice.
    Shipment { origin: NodeId, id: u64 },
    /// The entries `keys` of one session are being handed to `node` as
    /// its shipment `shipment`, outcome unknown until they are settled: a
    /// replay sends them there again under the same ID (the node takes a
    /// shipment once) instead of keeping them here as well.
    Handing { node: NodeId, shipment: u64, keys: Vec<u64> },
}

/// The kind byte of an `Entry` record (a scan tells entries apart without
/// copying them).
pub(super) const ENTRY: u8 = 1;
const ALIAS: u8 = 2;
const BINDING: u8 = 3;
const DERIVED_BINDING: u8 = 4;
const SHIPMENT: u8 = 5;
const HANDING: u8 = 6;

impl WalRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Entry(bytes) => {
                out.push(ENTRY);
                out.extend_from_slice(bytes);
            }
            Self::Alias { tenant, from, to } => {
                out.push(ALIAS);
                for s in [tenant.as_str(), from.as_str(), to.as_str()] {
                    put_str(out, s);
                }
            }
            Self::Binding { tenant, trace, id, explicit } => {
                out.push(if *explicit { BINDING } else { DERIVED_BINDING });
                put_str(out, tenant.as_str());
                out.extend_from_slice(&trace.0);
                put_str(out, id.as_str());
            }
            Self::Shipment { origin, id } => {
                out.push(SHIPMENT);
                out.extend_from_slice(&origin.0.to_le_bytes());
                out.extend_from_slice(&id.to_le_bytes());
            }
            Self::Handing { node, shipment, keys } => {
                out.push(HANDING);
                for n in [node.0, *shipment, keys.len() as u64].into_iter().chain(keys.iter().copied()) {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&kind, mut rest) = bytes.split_first()?;
        match kind {
            ENTRY => Some(Self::Entry(rest.to_vec())),
            ALIAS => {
                let tenant = take_str(&mut rest)?;
                let from = take_str(&mut rest)?;
                let to = take_str(&mut rest)?;
                Some(Self::Alias {
                    tenant: TenantId::from_trusted(tenant),
                    from: CorrelationId::from_trusted(from),
                    to: CorrelationId::from_trusted(to),
                })
            }
            BINDING | DERIVED_BINDING => {
                let tenant = take_str(&mut rest)?;
                let trace = TraceId(rest.get(..16)?.try_into().ok()?);
                rest = &rest[16..];
                let id = take_str(&mut rest)?;
                Some(Self::Binding {
                    tenant: TenantId::from_trusted(tenant),
                    trace,
                    id: CorrelationId::from_trusted(id),
                    explicit: kind == BINDING,
                })
            }
            SHIPMENT => {
                let origin = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
                let id = u64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
                Some(Self::Shipment { origin: NodeId(origin), id })
            }
            HANDING => {
                let mut words = rest.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
                let (node, shipment, count) = (words.next()?, words.next()?, words.next()?);
                let keys: Vec<u64> = words.collect();
                (keys.len() as u64 == count && rest.len() % 8 == 0).then_some(Self::Handing { node: NodeId(node), shipment, keys })
            }
            _ => None,
        }
    }

    /// The decoded entry, for `Entry` records.
    pub fn entry(&self) -> Option<Result<WalEntry, prost::DecodeError>> {
        match self {
            Self::Entry(bytes) => Some(WalEntry::decode(bytes.as_slice())),
            _ => None,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take_str(rest: &mut &[u8]) -> Option<String> {
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(rest.get(4..4 + len)?).ok()?.to_owned();
    *rest = &rest[4 + len..];
    Some(s)
}

/// Encodes the `WalEntry` of one session's input straight from the input's
/// buffers (the hot path: no intermediate `WalEntry` with copied bytes).
pub fn encode_entry(key: &SessionKey, input: &SessionInput) -> Vec<u8> {
    use ollystack_proto::wire::{put_bytes, put_record};
    let mut buf = Vec::with_capacity(input.cost_bytes() as usize + key.id.as_str().len() + 64);
    put_bytes(&mut buf, 1, key.tenant.as_str().as_bytes());
    put_bytes(&mut buf, 2, key.id.as_str().as_bytes());
    for s in &input.spans {
        put_record(&mut buf, 3, &s.service, &s.encoded);
    }
    for l in &input.logs {
        put_record(&mut buf, 4, &l.service, &l.encoded);
    }
    for e in &input.exemplars {
        prost::encoding::message::encode(5, e, &mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = TenantId::default_tenant();
        for r in [
            WalRecord::Entry(vec![1, 2, 3]),
            WalRecord::Alias {
                tenant: t.clone(),
                from: CorrelationId::from_trusted("olly-a-1"),
                to: CorrelationId::from_trusted("order-1"),
            },
            WalRecord::Binding { tenant: t.clone(), trace: TraceId([7; 16]), id: CorrelationId::from_trusted("order-1"), explicit: true },
            WalRecord::Binding { tenant: t, trace: TraceId([8; 16]), id: CorrelationId::from_trusted("olly-x"), explicit: false },
            WalRecord::Shipment { origin: NodeId(7), id: u64::MAX - 3 },
            WalRecord::Handing { node: NodeId(3), shipment: 99, keys: vec![4, 5, 1 << 40] },
            WalRecord::Handing { node: NodeId(3), shipment: 99, keys: Vec::new() },
        ] {
            let mut buf = Vec::new();
            r.encode(&mut buf);
            assert_eq!(WalRecord::decode(&buf), Some(r));
        }
        assert_eq!(WalRecord::decode(&[9, 1]), None);
        assert_eq!(WalRecord::decode(&[ALIAS, 200, 0, 0, 0]), None);
        // A key count that does not match the keys.
        let mut bad = vec![HANDING];
        for n in [1u64, 2, 5, 7] {
            bad.extend_from_slice(&n.to_le_bytes());
        }
        assert_eq!(WalRecord::decode(&bad), None);
    }

    #[test]
    fn node_ids_are_written_as_little_endian_u64() {
        let le = |words: &[u64]| words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        let mut buf = Vec::new();
        WalRecord::Shipment { origin: NodeId(0x0102_0304_0506_0708), id: 9 }.encode(&mut buf);
        assert_eq!(buf, [&[SHIPMENT][..], &le(&[0x0102_0304_0506_0708, 9])].concat());
        buf.clear();
        WalRecord::Handing { node: NodeId(u64::MAX - 1), shipment: 5, keys: vec![6] }.encode(&mut buf);
        assert_eq!(buf, [&[HANDING][..], &le(&[u64::MAX - 1, 5, 1, 6])].concat());
    }

    #[test]
    fn hand_encoded_entry_decodes_as_the_message() {
        use ollystack_proto::store::{StoredExemplar, StoredLog, StoredSpan};
        use std::sync::Arc;
        let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted("order-1") };
        let span = opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "x".repeat(200),
            ..Default::default()
        };
        let span_bytes = span.encode_to_vec();
        let log_bytes = opentelemetry_proto::tonic::logs::v1::LogRecord { time_unix_nano: 5, ..Default::default() }.encode_to_vec();
        let ex = StoredExemplar { metric_name: "m".into(), value: 1.5, ..Default::default() };
        let input = SessionInput {
            wal_key: None,
            spans: vec![crate::session::SpanInput::from_span(Arc::from("api"), &span, span_bytes.clone().into()).expect("ids")],
            logs: vec![crate::session::LogInput {
                service: Arc::from("db"),
                time_unix_nano: 5,
                is_error: false,
                encoded: log_bytes.clone().into(),
            }],
            exemplars: vec![ex.clone()],
        };
        let decoded = WalEntry::decode(encode_entry(&key, &input).as_slice()).expect("decodes");
        let expect = WalEntry {
            tenant_id: "default".into(),
            correlation_id: "order-1".into(),
            spans: vec![StoredSpan { service_name: "api".into(), span: span_bytes }],
            logs: vec![StoredLog { service_name: "db".into(), log: log_bytes }],
            exemplars: vec![ex],
        };
        assert_eq!(decoded, expect);
    }
}
