//! The FHIR `Parameters` resource: the kick-off body and the job's `output`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParametersResourceType {
    #[default]
    Parameters,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameters {
    pub resource_type: ParametersResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<Parameter>,
}

/// One parameter: a name and a `value[x]`, a `resource` or `part`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// The `value[x]` element, such as `valueInteger`; anything else here is not FHIR.
    #[serde(flatten)]
    pub value: Map<String, Value>,
}

impl Parameters {
    pub fn new(parameter: Vec<Parameter>) -> Self {
        Self {
            parameter,
            ..Self::default()
        }
    }
}

impl Parameter {
    fn with_value(name: &str, key: &str, value: Value) -> Self {
        Self {
            name: name.to_owned(),
            part: Vec::new(),
            resource: None,
            value: Map::from_iter([(key.to_owned(), value)]),
        }
    }

    pub fn integer(name: &str, value: i64) -> Self {
        Self::with_value(name, "valueInteger", value.into())
    }

    pub fn string(name: &str, value: &str) -> Self {
        Self::with_value(name, "valueString", value.into())
    }

    pub fn resource(name: &str, resource: Value) -> Self {
        Self {
            name: name.to_owned(),
            part: Vec::new(),
            resource: Some(resource),
            value: Map::new(),
        }
    }

    /// The single `value[x]` element, as `("valueInteger", 2)`. `None` when the parameter
    /// has no value or carries elements that are not a `value[x]`.
    pub fn single_value(&self) -> Option<(&str, &Value)> {
        let mut entries = self.value.iter();
        match (entries.next(), entries.next()) {
            (Some((key, value)), None) if key.starts_with("value") => Some((key, value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_round_trip() {
        let body = json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "dataVersion", "valueInteger": 2},
                {"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": []}},
                {"name": "migration", "part": [{"name": "name", "valueString": "ttl"}]}
            ]
        });
        let parsed: Parameters = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            parsed.parameter[0].single_value(),
            Some(("valueInteger", &json!(2)))
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
    }

    #[test]
    fn built_parameters_serialize_as_fhir() {
        let built = Parameters::new(vec![
            Parameter::integer("dataVersion", 1),
            Parameter::string("name", "x"),
        ]);
        assert_eq!(
            serde_json::to_value(&built).unwrap(),
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "dataVersion", "valueInteger": 1},
                {"name": "name", "valueString": "x"}
            ]})
        );
    }

    #[test]
    fn a_parameter_with_two_values_has_no_single_value() {
        let parameter: Parameter =
            serde_json::from_value(json!({"name": "a", "valueInteger": 1, "valueString": "1"}))
                .unwrap();
        assert_eq!(parameter.single_value(), None);
    }
}
