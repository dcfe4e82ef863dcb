//! ClickHouse storage: migrations, the batched flusher of finished
//! sessions, and the read path for queries.

mod settings;

pub use settings::{is_identifier, ClickHouseSettings};
