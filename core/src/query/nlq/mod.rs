//! Natural-language session search (`POST /api/v1/ai/nlq`): a rule-based,
//! table-driven parser turns a question such as "slowest checkout requests
//! with errors in the last hour" into a [`StructuredQuery`], which runs
//! through the ordinary session search ([`QueryBackend::recent_sessions`]
//! with a [`SessionFilter`]) and a pure post-filter and sort
//! ([`StructuredQuery::apply`]). The user's text never becomes query text:
//! only recognised words set typed fields; the rest is reported as unknown.
//!
//! * `words.rs`: the word tables.
//! * `parse.rs`: tokens → query (pure; tested with many phrasings).
//!
//! [`QueryBackend::recent_sessions`]: super::QueryBackend::recent_sessions

mod parse;
mod words;

pub use parse::{parse, Parsed, Vocabulary, QUESTION_CHARS_MAX};

use serde::Serialize;

use super::{SessionFilter, SessionListItem};

/// Results answered by default.
pub const LIMIT_DEFAULT: usize = 20;
/// Largest limit a question can ask for.
pub const LIMIT_MAX: usize = 200;
/// Sessions searched at most (the most recently active), before the
/// post-filter and sort.
pub const SCAN_MAX: usize = 2_000;

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderBy {
    DurationDesc,
    DurationAsc,
    /// Most recently active first (the session listing's order).
    Newest,
    Oldest,
    ErrorsDesc,
}

/// Which sessions count by their errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorFilter {
    Any,
    Only,
    Without,
}

/// A question as typed fields. Times are node-clock Unix ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuredQuery {
    /// Sessions that touched this service.
    pub service: Option<String>,
    /// Sessions whose root span's name contains this (case-insensitive).
    pub operation: Option<String>,
    pub errors: ErrorFilter,
    /// `errors == only`, for readers of the sessions API's `status=error`.
    pub errors_only: bool,
    pub order_by: OrderBy,
    /// Sessions last active at or after this time (node clock).
    pub since_unix_ms: Option<u64>,
    /// The same as RFC 3339.
    pub since: Option<String>,
    /// The relative range as asked, e.g. `1h`.
    pub range: Option<String>,
    pub min_duration_ms: Option<f64>,
    pub max_duration_ms: Option<f64>,
    pub limit: usize,
}

impl Default for StructuredQuery {
    fn default() -> Self {
        Self {
            service: None,
            operation: None,
            errors: ErrorFilter::Any,
            errors_only: false,
            order_by: OrderBy::Newest,
            since_unix_ms: None,
            since: None,
            range: None,
            min_duration_ms: None,
            max_duration_ms: None,
            limit: LIMIT_DEFAULT,
        }
    }
}

impl StructuredQuery {
    /// The session search that finds the candidates.
    pub fn filter(&self) -> SessionFilter {
        SessionFilter {
            service: self.service.clone(),
            errors_only: self.errors == ErrorFilter::Only,
            since_unix_ms: self.since_unix_ms,
            event_overlap_unix_nano: None,
            limit: SCAN_MAX,
            before_unix_ms: None,
        }
    }

    /// The rest of the query over the search's rows: filters, order, limit.
    pub fn apply(&self, mut rows: Vec<SessionListItem>) -> Vec<SessionListItem> {
        let operation = self.operation.as_ref().map(|o| o.to_lowercase());
        rows.retain(|r| {
            self.min_duration_ms.is_none_or(|m| r.duration_ms >= m)
                && self.max_duration_ms.is_none_or(|m| r.duration_ms <= m)
                && (self.errors != ErrorFilter::Without || r.error_count == 0)
                && operation.as_ref().is_none_or(|o| r.root_span.as_ref().is_some_and(|name| name.to_lowercase().contains(o.as_str())))
        });
        let by_id = |a: &SessionListItem, b: &SessionListItem| a.correlation_id.cmp(&b.correlation_id);
        match self.order_by {
            OrderBy::DurationDesc => rows.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms).then_with(|| by_id(a, b))),
            OrderBy::DurationAsc => rows.sort_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms).then_with(|| by_id(a, b))),
            OrderBy::Newest => rows.sort_by(|a, b| b.last_seen_unix_ms.cmp(&a.last_seen_unix_ms).then_with(|| by_id(a, b))),
            OrderBy::Oldest => rows.sort_by(|a, b| a.last_seen_unix_ms.cmp(&b.last_seen_unix_ms).then_with(|| by_id(a, b))),
            OrderBy::ErrorsDesc => rows.sort_by(|a, b| b.error_count.cmp(&a.error_count).then_with(|| by_id(a, b))),
        }
        rows.truncate(self.limit);
        rows
    }

    /// One sentence saying what the query asks.
    pub fn interpretation(&self) -> String {
        let mut parts = vec!["sessions".to_owned()];
        if let Some(s) = &self.service {
            parts.push(format!("touching service {s}"));
        }
        if let Some(o) = &self.operation {
            parts.push(format!("whose root operation contains {o:?}"));
        }
        match self.errors {
            ErrorFilter::Only => parts.push("with errors".to_owned()),
            ErrorFilter::Without => parts.push("without errors".to_owned()),
            ErrorFilter::Any => {}
        }
        if let Some(m) = self.min_duration_ms {
            parts.push(format!("lasting at least {m} ms"));
        }
        if let Some(m) = self.max_duration_ms {
            parts.push(format!("lasting at most {m} ms"));
        }
        match (&self.range, &self.since) {
            (Some(range), Some(since)) => parts.push(format!("active in the last {range} (since {since})")),
            (None, Some(since)) => parts.push(format!("active since {since}")),
            _ => {}
        }
        let order = match self.order_by {
            OrderBy::DurationDesc => "slowest first",
            OrderBy::DurationAsc => "fastest first",
            OrderBy::Newest => "most recent first",
            OrderBy::Oldest => "oldest first",
            OrderBy::ErrorsDesc => "most errors first",
        };
        format!("{}, {order}, at most {}", parts.join(" "), self.limit)
    }
}
