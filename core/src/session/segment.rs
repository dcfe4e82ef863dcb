//! The signals of one segment, as queries read them.

use ollystack_proto::store::{StoredExemplar, StoredLog, StoredSpan};

/// The signals of one session segment (live actor state or an archived
/// segment). Segments of one session may overlap (a segment being archived
/// while a query runs): builders de-duplicate.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// True when this part is still held by a live session actor.
    pub live: bool,
    pub spans: Vec<StoredSpan>,
    pub logs: Vec<StoredLog>,
    pub exemplars: Vec<StoredExemplar>,
}
