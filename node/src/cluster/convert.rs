//! Session data and exemplar hits to and from their protobuf form, for
//! queries answered by another node.

use ollystack_proto::cluster as pb;
use ollystack_proto::store::IndexedExemplar;

use crate::model::CorrelationId;
use crate::query::{Counts, ExemplarHit, Page, PagedSession, Segment, SessionData};

pub fn session_to_pb(data: SessionData) -> pb::SessionData {
    pb::SessionData {
        correlation_id: data.id.as_str().to_owned(),
        segments: data
            .segments
            .into_iter()
            .map(|s| pb::SegmentData { live: s.live, spans: s.spans, logs: s.logs, exemplars: s.exemplars })
            .collect(),
        partial: data.partial.unwrap_or_default(),
        aliases: data.aliases.iter().map(|a| a.as_str().to_owned()).collect(),
        ..Default::default()
    }
}

/// One page of a session, with the session's record counts.
pub fn paged_to_pb(paged: PagedSession) -> pb::SessionData {
    let total = paged.total;
    pb::SessionData { total_spans: total.spans, total_logs: total.logs, total_exemplars: total.exemplars, ..session_to_pb(paged.data) }
}

/// A node's answer to a [`pb::SessionPageQuery`] for `page`.
pub fn paged_from_pb(data: pb::SessionData, page: Page) -> PagedSession {
    let total = Counts { spans: data.total_spans, logs: data.total_logs, exemplars: data.total_exemplars };
    PagedSession { data: session_from_pb(data), page, total }
}

pub fn session_from_pb(data: pb::SessionData) -> SessionData {
    SessionData {
        id: CorrelationId::from_trusted(data.correlation_id.as_str()),
        segments: data
            .segments
            .into_iter()
            .map(|s| Segment { live: s.live, spans: s.spans, logs: s.logs, exemplars: s.exemplars })
            .collect(),
        partial: (!data.partial.is_empty()).then_some(data.partial),
        aliases: data.aliases.iter().map(|a| CorrelationId::from_trusted(a.as_str())).collect(),
    }
}

pub fn hits_to_pb(hits: Vec<ExemplarHit>) -> pb::Exemplars {
    pb::Exemplars {
        hits: hits
            .into_iter()
            .map(|h| IndexedExemplar { correlation_id: h.correlation_id.as_str().to_owned(), exemplar: Some(h.exemplar) })
            .collect(),
    }
}

pub fn hits_from_pb(hits: pb::Exemplars) -> Vec<ExemplarHit> {
    hits.hits
        .into_iter()
        .filter_map(|h| Some(ExemplarHit { correlation_id: CorrelationId::from_trusted(h.correlation_id.as_str()), exemplar: h.exemplar? }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollystack_proto::store::{StoredExemplar, StoredLog, StoredSpan};

    #[test]
    fn session_data_survives_the_round_trip() {
        let data = SessionData {
            id: CorrelationId::from_trusted("order-1"),
            segments: vec![
                Segment {
                    live: true,
                    spans: vec![StoredSpan { service_name: "a".into(), span: vec![1, 2] }],
                    logs: vec![StoredLog { service_name: "b".into(), log: vec![3] }],
                    exemplars: vec![StoredExemplar { metric_name: "m".into(), value: 1.5, ..Default::default() }],
                },
                Segment { live: false, ..Default::default() },
            ],
            partial: Some("storage down".into()),
            aliases: vec![CorrelationId::from_trusted("olly-1-aa")],
        };
        let back = session_from_pb(session_to_pb(data.clone()));
        assert_eq!(back.id, data.id);
        assert_eq!(back.partial, data.partial);
        assert_eq!(back.aliases, data.aliases);
        assert_eq!(back.segments.len(), 2);
        assert!(back.segments[0].live && !back.segments[1].live);
        assert_eq!(back.segments[0].spans, data.segments[0].spans);
        assert_eq!(back.segments[0].logs, data.segments[0].logs);
        assert_eq!(back.segments[0].exemplars, data.segments[0].exemplars);
        let none = session_from_pb(session_to_pb(SessionData { partial: None, ..data.clone() }));
        assert_eq!(none.partial, None);

        let page = Page { offset: 10, limit: 5 };
        let total = Counts { spans: 17, logs: 2, exemplars: 1 };
        let paged = paged_from_pb(paged_to_pb(PagedSession { data, page, total }), page);
        assert_eq!((paged.page, paged.total, paged.data.segments.len()), (page, total, 2));
    }
}
