//! The FHIR `Parameters` resource: the kick-off body and the job's `output`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::outcome::{IssueCode, OperationOutcome};

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

    /// A failed job's `output`: one `outcome` part, the OperationOutcome that says why.
    pub fn failure(reason: impl Into<String>) -> Self {
        let outcome = OperationOutcome::error(IssueCode::Exception, reason);
        Self::new(vec![Parameter::resource(
            "outcome",
            serde_json::to_value(outcome).expect("an OperationOutcome serializes"),
        )])
    }

    /// FHIR's rules for parameters: a name, and one and only one of a `value[x]`, a
    /// `resource` or `part`s.
    pub fn check(&self) -> Result<(), String> {
        self.parameter.iter().try_for_each(Parameter::check)
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

    pub fn url(name: &str, value: &str) -> Self {
        Self::with_value(name, "valueUrl", value.into())
    }

    pub fn code(name: &str, value: &str) -> Self {
        Self::with_value(name, "valueCode", value.into())
    }

    pub fn instant(name: &str, value: &str) -> Self {
        Self::with_value(name, "valueInstant", value.into())
    }

    pub fn id(name: &str, value: &str) -> Self {
        Self::with_value(name, "valueId", value.into())
    }

    /// A parameter made of `parts`.
    pub fn parts(name: &str, parts: Vec<Parameter>) -> Self {
        Self {
            name: name.to_owned(),
            part: parts,
            resource: None,
            value: Map::new(),
        }
    }

    pub fn resource(name: &str, resource: Value) -> Self {
        Self {
            name: name.to_owned(),
            part: Vec::new(),
            resource: Some(resource),
            value: Map::new(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("a parameter has an empty name".into());
        }
        if let Some(key) = self.value.keys().find(|key| !is_value_key(key)) {
            return Err(format!(
                "parameter {:?} has an unknown element {key:?}",
                self.name
            ));
        }
        let kinds = usize::from(!self.value.is_empty())
            + usize::from(self.resource.is_some())
            + usize::from(!self.part.is_empty());
        if kinds != 1 || self.value.len() > 1 {
            return Err(format!(
                "parameter {:?} must have one and only one of a value[x], a resource or parts",
                self.name
            ));
        }
        if let Some(resource) = &self.resource
            && resource
                .get("resourceType")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(format!(
                "parameter {:?} holds something that is not a resource",
                self.name
            ));
        }
        self.part.iter().try_for_each(Parameter::check)
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

/// `valueInteger`, `valueString`, ...: `value` and a type name.
fn is_value_key(key: &str) -> bool {
    key.strip_prefix("value")
        .is_some_and(|kind| kind.starts_with(|c: char| c.is_ascii_uppercase()))
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
    fn parameters_follow_fhir_rules() {
        let valid = json!({"resourceType": "Parameters", "parameter": [
            {"name": "a", "valueInteger": 1},
            {"name": "b", "resource": {"resourceType": "Patient"}},
            {"name": "c", "part": [{"name": "d", "valueString": "x"}]}
        ]});
        let parsed: Parameters = serde_json::from_value(valid).unwrap();
        assert_eq!(parsed.check(), Ok(()));
        for bad in [
            json!({"name": "", "valueInteger": 1}),
            json!({"name": "a"}),
            json!({"name": "a", "valueInteger": 1, "valueString": "1"}),
            json!({"name": "a", "valueInteger": 1, "resource": {"resourceType": "Patient"}}),
            json!({"name": "a", "resource": false}),
            json!({"name": "a", "resource": {"id": "x"}}),
            json!({"name": "a", "resource": {"resourceType": ""}}),
            json!({"name": "a", "surprise": 1}),
            json!({"name": "a", "part": [{"name": "b"}]}),
        ] {
            let parameters: Parameters = serde_json::from_value(
                json!({"resourceType": "Parameters", "parameter": [bad.clone()]}),
            )
            .unwrap();
            assert!(parameters.check().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_parameter_with_two_values_has_no_single_value() {
        let parameter: Parameter =
            serde_json::from_value(json!({"name": "a", "valueInteger": 1, "valueString": "1"}))
                .unwrap();
        assert_eq!(parameter.single_value(), None);
    }
}
