//! The settings of the correlation rules: which attributes name a
//! correlation ID or a tenant, and the limits applied to external IDs.

/// Settings of the correlation rules (built by config; defaults below).
///
/// Immutable once built: config validates it (for example that
/// `max_id_length` is at least the length of our own `olly-` IDs, 27 bytes)
/// and the rules only read it.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationSettings {
    /// Resource, span, log and exemplar attribute holding an explicit ID.
    pub attribute: String,
    /// Attributes holding a propagated header (`http.request.header.*`),
    /// tried in order; values may be a string or an array of strings.
    pub header_attributes: Vec<String>,
    /// Attributes holding a W3C `baggage` header string.
    pub baggage_attributes: Vec<String>,
    /// Baggage member whose value is the correlation ID.
    pub baggage_member: String,
    /// Top-level fields of a structured log body that may hold the ID,
    /// tried in order.
    pub log_body_fields: Vec<String>,
    /// Longest accepted external ID, in bytes (checked before any other work,
    /// so a hostile multi-megabyte value costs nothing).
    pub max_id_length: usize,
    /// Empty: any external ID is accepted after sanitizing. Otherwise an
    /// external ID must start with one of these prefixes.
    pub trusted_prefixes: Vec<String>,
    /// Whether signals are split by tenant at all.
    pub tenancy_enabled: bool,
    /// Resource or signal attribute naming the tenant.
    pub tenant_attribute: String,
}

impl Default for CorrelationSettings {
    fn default() -> Self {
        Self {
            attribute: "correlation_id".to_owned(),
            header_attributes: vec!["http.request.header.x-correlation-id".to_owned(), "http.request.header.x-request-id".to_owned()],
            baggage_attributes: vec!["baggage".to_owned(), "http.request.header.baggage".to_owned()],
            baggage_member: "correlation_id".to_owned(),
            log_body_fields: ["correlation_id", "correlationId", "request_id", "requestId"].into_iter().map(str::to_owned).collect(),
            max_id_length: 100,
            trusted_prefixes: Vec::new(),
            tenancy_enabled: false,
            tenant_attribute: "tenant_id".to_owned(),
        }
    }
}
