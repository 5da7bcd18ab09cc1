//! template.yaml, read: what is deployed. Its functions are the one list of the service's
//! binaries; the Makefile's list and the benchmarks' are checked against or read from it.

use std::collections::BTreeMap;

use serde_json::Value;

pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// The template as JSON; it is written without YAML's short-form tags so any reader can.
pub fn template() -> Value {
    serde_yaml_ng::from_str(TEMPLATE).expect("template.yaml is YAML without short-form tags")
}

/// The template's functions, by logical id.
pub fn functions(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has resources")
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .map(|(name, resource)| (name.clone(), resource.clone()))
        .collect()
}

/// The binary a function of the template runs.
pub fn binary(function: &Value) -> String {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .expect("every function names its binary")
        .to_owned()
}

/// Every binary the template deploys, sorted.
pub fn deployed_binaries() -> Vec<String> {
    let mut binaries: Vec<String> = functions(&template()).values().map(binary).collect();
    binaries.sort();
    binaries
}
