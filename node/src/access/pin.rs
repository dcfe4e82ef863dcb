//! A tenant-bound ingest caller's batch goes to its tenant: every resource
//! gets the tenant attribute set to the token's tenant (replacing whatever
//! the sender put there). Resource attributes decide a signal's tenant
//! first (`correlate::tenant_of`), so nothing in the batch can name
//! another. Pure.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::layer::PinTenant;

fn pin_resource(resource: &mut Option<Resource>, pin: &PinTenant) {
    let resource = resource.get_or_insert_with(Resource::default);
    resource.attributes.retain(|kv| kv.key != *pin.attribute);
    resource.attributes.push(KeyValue {
        key: pin.attribute.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(pin.tenant.as_str().to_owned())) }),
        ..Default::default()
    });
}

/// A request type whose resources can be pinned to a tenant.
pub trait Pinnable {
    fn pin_tenant(&mut self, pin: &PinTenant);
}

impl Pinnable for ExportTraceServiceRequest {
    fn pin_tenant(&mut self, pin: &PinTenant) {
        self.resource_spans.iter_mut().for_each(|r| pin_resource(&mut r.resource, pin));
    }
}

impl Pinnable for ExportLogsServiceRequest {
    fn pin_tenant(&mut self, pin: &PinTenant) {
        self.resource_logs.iter_mut().for_each(|r| pin_resource(&mut r.resource, pin));
    }
}

impl Pinnable for ExportMetricsServiceRequest {
    fn pin_tenant(&mut self, pin: &PinTenant) {
        self.resource_metrics.iter_mut().for_each(|r| pin_resource(&mut r.resource, pin));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

    use super::*;
    use crate::correlate::{tenant_of, CorrelationSettings};
    use crate::model::TenantId;

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    #[test]
    fn the_tokens_tenant_wins_over_what_the_batch_says() {
        let settings = CorrelationSettings { tenancy_enabled: true, ..CorrelationSettings::default() };
        let attr = settings.tenant_attribute.clone();
        let mut request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource { attributes: vec![text(&attr, "victim"), text(&attr, "victim2")], ..Default::default() }),
                    ..Default::default()
                },
                ResourceSpans { resource: None, ..Default::default() },
            ],
        };
        let pin = PinTenant { attribute: Arc::from(attr.as_str()), tenant: TenantId::from_trusted("acme") };
        request.pin_tenant(&pin);
        for r in &request.resource_spans {
            let attrs = &r.resource.as_ref().expect("resource").attributes;
            assert_eq!(attrs.iter().filter(|kv| kv.key == attr).count(), 1);
            // A signal attribute naming another tenant does not decide either.
            assert_eq!(tenant_of(&settings, attrs, &[text(&attr, "victim")]), TenantId::from_trusted("acme"));
        }
    }
}
