//! Who may call the OTLP and API ports: bearer tokens with scopes, kept
//! hashed in a tokens file (`tokens`, `store`), checked by one tower layer
//! in front of every listener (`layer`); a caller bound to a tenant writes
//! and reads that tenant only (`pin` for ingest, `api::tenant` for reads).
//! The cluster port authenticates its callers by mutual TLS instead
//! (`ollystack_cluster::net::auth`).

pub mod cli;
pub mod layer;
pub mod pin;
pub mod store;
pub mod tokens;

pub use layer::{AuthLayer, PinTenant};
pub use store::{TokenStore, TokensFileError};
pub use tokens::{Caller, Denied, Scope};
