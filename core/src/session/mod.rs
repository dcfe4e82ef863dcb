//! The pure part of a live correlation session (the node's actors carry it).
//!
//! * [`state`]: the compact, de-duplicating data of one segment.
//! * [`summary`]: the running summary.
//! * [`finish`]: when a segment finishes.
//! * [`finished`]: a finished segment on its way to storage, and its index
//!   record.
//! * [`segment`]: a segment's signals as queries read them.

pub mod finish;
pub mod finished;
pub mod segment;
pub mod state;
pub mod summary;

pub use finish::{FinishReason, FinishRules};
pub use finished::{ArchiveIndexEntry, FinishedSegment};
pub use segment::Segment;
pub use state::{LogInput, SessionInput, SessionState, SpanInput};
pub use summary::Summary;
