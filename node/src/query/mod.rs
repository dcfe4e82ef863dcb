//! Queries: the core's pure answer builders ([`ollystack_core::query`],
//! re-exported here whole) and the node's side of them: the
//! [`QueryBackend`] trait through which the API reaches live actors and
//! storage, and the reading of an incident window's sessions.

pub use ollystack_core::query::*;

mod backend;

pub use backend::{collect_window, QueryBackend, QueryError};
