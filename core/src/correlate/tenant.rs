//! Which tenant a signal belongs to, when tenancy is on.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::validate::{sanitize, screen, TENANT_ID_BYTES_MAX};
use super::{attr, baggage, settings::CorrelationSettings};
use crate::model::TenantId;

/// Whether `name` is a tenant as stored: 1..=64 bytes of `[A-Za-z0-9_-]`
/// (ingest sanitizes tenants so). Pure.
pub fn is_tenant_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= TENANT_ID_BYTES_MAX && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Baggage member naming the tenant.
const TENANT_BAGGAGE_MEMBER: &str = "tenant_id";

/// The tenant of a signal: [`TenantId::default_tenant`] when tenancy is off;
/// else the resource attribute `s.tenant_attribute`, then the signal
/// attribute, then baggage member `tenant_id` (signal, then resource).
///
/// The first value found decides. It passes the same screening as external
/// correlation IDs (at most 64 bytes, no control bytes, no injection
/// pattern) and is sanitized to `[A-Za-z0-9_-]`; a value that fails goes to
/// the default tenant. Note that sanitizing maps `acme corp` and `acme_corp`
/// to one tenant: tenant names are expected to be plain tokens already.
pub fn tenant_of(s: &CorrelationSettings, resource_attrs: &[KeyValue], signal_attrs: &[KeyValue]) -> TenantId {
    if !s.tenancy_enabled {
        return TenantId::default_tenant();
    }
    let raw = attr::find(resource_attrs, &s.tenant_attribute)
        .and_then(attr::scalar_text)
        .or_else(|| attr::find(signal_attrs, &s.tenant_attribute).and_then(attr::scalar_text))
        .or_else(|| baggage::lookup(&s.baggage_attributes, TENANT_BAGGAGE_MEMBER, [signal_attrs, resource_attrs]));
    match raw.as_deref().map(|raw| screen(raw, TENANT_ID_BYTES_MAX)) {
        Some(Ok(text)) => TenantId::from_trusted(sanitize(text).as_ref()),
        Some(Err(_)) | None => TenantId::default_tenant(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::attr::test_util::*;
    use super::*;
    use proptest::prelude::*;

    fn on() -> CorrelationSettings {
        CorrelationSettings { tenancy_enabled: true, ..CorrelationSettings::default() }
    }

    fn tenant(text: &str) -> TenantId {
        TenantId::from_trusted(text)
    }

    #[test]
    fn tenancy_off_is_always_default() {
        let resource = vec![kvs("tenant_id", "acme")];
        let off = CorrelationSettings::default();
        assert_eq!(tenant_of(&off, &resource, &[]), TenantId::default_tenant());
    }

    #[test]
    fn resource_then_signal_then_baggage() {
        let resource = vec![kvs("tenant_id", "res"), kvs("baggage", "tenant_id=bag-res")];
        let signal = vec![kvs("tenant_id", "sig"), kvs("http.request.header.baggage", "tenant_id=bag-sig")];
        assert_eq!(tenant_of(&on(), &resource, &signal), tenant("res"));
        assert_eq!(tenant_of(&on(), &resource[1..], &signal), tenant("sig"));
        assert_eq!(tenant_of(&on(), &resource[1..], &signal[1..]), tenant("bag-sig"));
        assert_eq!(tenant_of(&on(), &resource[1..], &[]), tenant("bag-res"));
        assert_eq!(tenant_of(&on(), &[], &[]), TenantId::default_tenant());
    }

    #[test]
    fn the_attribute_name_is_configurable() {
        let s = CorrelationSettings { tenant_attribute: "org".into(), ..on() };
        assert_eq!(tenant_of(&s, &[kvs("org", "o1")], &[]), tenant("o1"));
    }

    #[test]
    fn tenants_are_sanitized_or_defaulted() {
        assert_eq!(tenant_of(&on(), &[kvs("tenant_id", "acme corp")], &[]), tenant("acme_corp"));
        for bad in ["a\nb", "../etc", "   ", &"t".repeat(65)] {
            assert_eq!(tenant_of(&on(), &[kvs("tenant_id", bad)], &[]), TenantId::default_tenant(), "{bad:?}");
        }
        assert_eq!(tenant_of(&on(), &[kvs("tenant_id", &"t".repeat(64))], &[]), tenant(&"t".repeat(64)));
    }

    proptest! {
        #[test]
        fn tenants_are_always_clean(raw in any::<String>()) {
            let t = tenant_of(&on(), &[kvs("tenant_id", &raw)], &[]);
            let text = t.as_str();
            prop_assert!(!text.is_empty() && text.len() <= TENANT_ID_BYTES_MAX);
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
    }
}
