//! Reads one page of an encoded `ArchivedSegment` without decoding the
//! rest: the segment's protobuf fields are walked in place, every span, log
//! and exemplar is shown to the [`Pager`], and only those in the page are
//! decoded. A read of a huge segment thus holds its encoded bytes once plus
//! at most one page of decoded records, never a second, decoded copy of
//! the whole segment.

use bytes::Buf;
use ollystack_proto::store::{StoredExemplar, StoredLog, StoredSpan};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::query::{Pager, Segment};

/// Field numbers of `ArchivedSegment` (proto/ollystack/v1/store.proto).
const SPANS_FIELD: u32 = 7;
const LOGS_FIELD: u32 = 8;
const EXEMPLARS_FIELD: u32 = 9;

/// An encoded segment that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("a record runs past the end of its segment")]
    Overrun,
}

/// The records of the encoded `ArchivedSegment` `encoded` that `pager`
/// keeps, as an archived (not live) segment.
pub fn page_of(mut encoded: &[u8], pager: &mut Pager) -> Result<Segment, WalkError> {
    let mut out = Segment::default();
    while encoded.has_remaining() {
        let (tag, wire_type) = decode_key(&mut encoded)?;
        let repeated = matches!(tag, SPANS_FIELD | LOGS_FIELD | EXEMPLARS_FIELD);
        if !repeated || wire_type != WireType::LengthDelimited {
            skip_field(wire_type, tag, &mut encoded, DecodeContext::default())?;
            continue;
        }
        let len = usize::try_from(decode_varint(&mut encoded)?).map_err(|_| WalkError::Overrun)?;
        if len > encoded.len() {
            return Err(WalkError::Overrun);
        }
        let (record, rest) = encoded.split_at(len);
        encoded = rest;
        match tag {
            SPANS_FIELD if pager.span() => out.spans.push(StoredSpan::decode(record)?),
            LOGS_FIELD if pager.log() => out.logs.push(StoredLog::decode(record)?),
            EXEMPLARS_FIELD if pager.exemplar() => out.exemplars.push(StoredExemplar::decode(record)?),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Counts, Page};
    use ollystack_proto::store::ArchivedSegment;

    fn segment(spans: usize, logs: usize) -> ArchivedSegment {
        ArchivedSegment {
            correlation_id: "order-1".into(),
            segment_seq: 9,
            spans: (0..spans).map(|i| StoredSpan { service_name: format!("s{i}"), span: vec![i as u8] }).collect(),
            logs: (0..logs).map(|i| StoredLog { service_name: format!("l{i}"), log: vec![i as u8] }).collect(),
            exemplars: vec![StoredExemplar { metric_name: "m".into(), value: 2.5, ..Default::default() }],
            wal_keys: vec![1, 2, 3],
            ..Default::default()
        }
    }

    #[test]
    fn decodes_only_the_page_and_counts_everything() {
        let encoded = segment(6, 3).encode_to_vec();
        let mut pager = Pager::new(Page { offset: 2, limit: 3 });
        let page = page_of(&encoded, &mut pager).expect("decodes");
        let names: Vec<&str> = page.spans.iter().map(|s| s.service_name.as_str()).collect();
        assert_eq!(names, ["s2", "s3", "s4"]);
        assert_eq!(page.logs.iter().map(|l| l.service_name.as_str()).collect::<Vec<_>>(), ["l2"]);
        assert!(page.exemplars.is_empty() && !page.live);
        assert_eq!(pager.seen(), Counts { spans: 6, logs: 3, exemplars: 1 });
    }

    #[test]
    fn the_whole_page_equals_a_full_decode() {
        let original = segment(4, 2);
        let page = page_of(&original.encode_to_vec(), &mut Pager::new(Page::ALL)).expect("decodes");
        assert_eq!((page.spans, page.logs, page.exemplars), (original.spans, original.logs, original.exemplars));
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_short_page() {
        let encoded = segment(3, 0).encode_to_vec();
        assert!(page_of(&encoded[..encoded.len() - 2], &mut Pager::new(Page::ALL)).is_err());
    }
}
