//! The OTLP resource: who is pushing. Read once at startup from the environment.
//!
//! Lowest to highest precedence: the pod identity from the downward-API variables the chart sets
//! (`K8S_POD_NAME`, `K8S_NAMESPACE_NAME`, `K8S_NODE_NAME`), then `OTEL_RESOURCE_ATTRIBUTES`,
//! then `service.name` from `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`, else
//! `unknown_service:heartwire`). The two `OTEL_*` variables are read by the SDK's own resource
//! detectors, so they behave as in every other OpenTelemetry program.

use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_sdk::resource::{
    EnvResourceDetector, Resource, ResourceDetector, SdkProvidedResourceDetector,
};

use super::settings::Lookup;

/// Downward-API variables and the resource attribute each one becomes.
const POD_IDENTITY: [(&str, &str); 4] = [
    ("K8S_POD_NAME", "k8s.pod.name"),
    ("K8S_POD_UID", "k8s.pod.uid"),
    ("K8S_NAMESPACE_NAME", "k8s.namespace.name"),
    ("K8S_NODE_NAME", "k8s.node.name"),
];

/// The resource attributes of every export, sorted by key.
pub fn attributes(env: Lookup<'_>) -> Vec<ProtoKeyValue> {
    let pod = POD_IDENTITY
        .iter()
        .filter_map(|(variable, key)| env(variable).map(|value| KeyValue::new(*key, value)));
    let detectors: [Box<dyn ResourceDetector>; 2] = [
        Box::new(EnvResourceDetector::new()),
        Box::new(SdkProvidedResourceDetector),
    ];
    let resource = Resource::builder_empty()
        .with_attributes(pod)
        .with_detectors(&detectors)
        .build();
    let mut attributes: Vec<ProtoKeyValue> = resource
        .iter()
        .map(|(key, value)| string_attribute(key.as_str(), &value.as_str()))
        .collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    attributes
}

/// A string-valued OTLP attribute.
pub fn string_attribute(key: &str, value: &str) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..ProtoKeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(attributes: &[ProtoKeyValue], key: &str) -> Option<String> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(text) => Some(text.clone()),
                _ => None,
            }
        })
    }

    #[test]
    fn the_downward_api_variables_name_the_pod() {
        let env = |name: &str| match name {
            "K8S_POD_NAME" => Some("web-7d9f".to_owned()),
            "K8S_NAMESPACE_NAME" => Some("shop".to_owned()),
            "K8S_NODE_NAME" => Some("node-3".to_owned()),
            _ => None,
        };
        let attributes = attributes(&env);
        assert_eq!(
            value(&attributes, "k8s.pod.name").as_deref(),
            Some("web-7d9f")
        );
        assert_eq!(
            value(&attributes, "k8s.namespace.name").as_deref(),
            Some("shop")
        );
        assert_eq!(
            value(&attributes, "k8s.node.name").as_deref(),
            Some("node-3")
        );
        assert_eq!(value(&attributes, "k8s.pod.uid"), None);
        // service.name is always there; its value depends on this process's environment.
        assert!(value(&attributes, "service.name").is_some());
    }
}
