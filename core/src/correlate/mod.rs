//! Correlation: the pure rules that decide which session a signal belongs
//! to, and the attribute hygiene applied on the way in.
//!
//! * [`settings`](CorrelationSettings): which attributes name IDs and tenants.
//! * extract: the explicit ID a span, log or exemplar carries
//!   ([`span_candidate`], [`log_candidate`], [`exemplar_candidate`]).
//! * validate: length, control bytes, injection patterns, strict `olly-`
//!   format, trusted prefixes, sanitizing ([`validate`]).
//! * ids: our own IDs, derived from a trace ([`derive_from_trace`]) or
//!   generated ([`generate`]).
//! * resolve: the ID of one signal and the change its trace's binding needs
//!   (trace unification, [`resolve`]).
//! * reconcile: two nodes' bindings of one trace, when bindings follow
//!   their trace's home after a ring change ([`reconcile`]).
//! * tenant: the tenant of a signal ([`tenant_of`]).
//! * semconv and sql: migration of deprecated attribute names and SQL
//!   literal scrubbing ([`migrate_attributes`], [`scrub_sql_literals`]).
//!
//! Nothing here does I/O, reads a clock or draws random numbers: callers
//! pass the time and randomness in, and carry out the decisions.

mod attr;
mod baggage;
mod extract;
mod ids;
mod reconcile;
mod resolve;
mod semconv;
mod settings;
mod sql;
mod tenant;
mod validate;

pub use extract::{exemplar_candidate, log_candidate, span_candidate, Candidate};
pub use ids::{derive_from_trace, generate, is_olly_id, unscoped, UNSCOPED_BUCKET_MS};
pub use reconcile::{derived_to_merge, reconcile, BindingChange};
pub use resolve::{resolve, Resolution, TraceBinding};
pub use semconv::migrate_attributes;
pub use settings::CorrelationSettings;
pub use sql::scrub_sql_literals;
pub use tenant::{is_tenant_name, tenant_of};
pub use validate::TENANT_ID_BYTES_MAX;
pub use validate::{is_intake_key, validate, RejectReason, Validated, MAX_ID_LENGTH_LIMIT};
