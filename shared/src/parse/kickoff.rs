//! The kick-off request: which data version a migration should reach, from a query string
//! and a `Parameters` body, or from an event's JSON.

use serde_json::Value;

use serde::Deserialize;

use super::Invalid;
use super::params::ParamReader;
use super::prefer::Handling;
use crate::model::{CodeSet, JobType, Parameters};

const DATA_VERSION: &str = "dataVersion";

/// What a kick-off asks for, from its query string and its body (a `Parameters` resource or
/// nothing). Without a version it means `newest`, the newest registered migration's.
pub fn requested_data_version(
    query: &[(String, String)],
    body: &[u8],
    handling: Handling,
    newest: u32,
) -> Result<u32, Invalid> {
    let params = ParamReader::new(query, &[DATA_VERSION], handling)?;
    let from_query = params.integer(DATA_VERSION, 1..=u32::MAX)?;
    let from_body = body_data_version(body, handling)?;
    let version = match (from_query, from_body) {
        (Some(a), Some(b)) if a != b => {
            return Err(Invalid(format!(
                "the query asks for dataVersion {a} and the body for {b}"
            )));
        }
        (Some(version), _) | (None, Some(version)) => version,
        (None, None) => newest,
    };
    check_known(version, newest)
}

fn check_known(version: u32, newest: u32) -> Result<u32, Invalid> {
    if version > newest {
        return Err(Invalid(format!(
            "dataVersion {version} is unknown: the newest registered migration is {newest}"
        )));
    }
    Ok(version)
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(members) => members.values().any(has_null),
        _ => false,
    }
}

/// A kick-off carried by an event (EventBridge `detail`, SQS message body).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventRequest {
    #[serde(rename = "type")]
    job_type: String,
    data_version: Option<u32>,
}

/// The data version an event asks for: `{"type": "data-migration", "dataVersion": 2}`, or
/// the same `Parameters` resource the HTTP kick-off takes.
pub fn event_data_version(request: &serde_json::Value, newest: u32) -> Result<u32, Invalid> {
    if request.get("resourceType").is_some() {
        let body = request.to_string();
        return requested_data_version(&[], body.as_bytes(), Handling::Strict, newest);
    }
    let request: EventRequest = serde_json::from_value(request.clone())
        .map_err(|error| Invalid(format!("not a kick-off request: {error}")))?;
    if JobType::parse(&request.job_type) != Some(JobType::DataMigration) {
        return Err(Invalid(format!(
            "type {:?} cannot be kicked off (known: data-migration)",
            request.job_type
        )));
    }
    match request.data_version {
        Some(0) => Err(Invalid("dataVersion must be 1 or more".into())),
        Some(version) => check_known(version, newest),
        None => Ok(newest),
    }
}

fn body_data_version(body: &[u8], handling: Handling) -> Result<Option<u32>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| Invalid(format!("the body is not valid JSON: {error}")))?;
    if has_null(&value) {
        return Err(Invalid(
            "FHIR JSON has no null values; leave the element out".into(),
        ));
    }
    if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Invalid("the body must be a Parameters resource".into()));
    }
    let parameters: Parameters = serde_json::from_value(value).map_err(|error| {
        Invalid(format!(
            "the body is not a valid Parameters resource: {error}"
        ))
    })?;
    parameters
        .check()
        .map_err(|problem| Invalid(format!("the body is not valid: {problem}")))?;
    let mut version = None;
    for parameter in &parameters.parameter {
        if parameter.name != DATA_VERSION {
            if handling == Handling::Strict {
                return Err(Invalid(format!("unknown parameter {:?}", parameter.name)));
            }
            continue;
        }
        if version.is_some() {
            return Err(Invalid("dataVersion may be given only once".into()));
        }
        version = Some(
            parameter
                .single_value()
                .and_then(|(kind, value)| (kind == "valueInteger").then_some(value))
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| Invalid("dataVersion must be a valueInteger of 1 or more".into()))?,
        );
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NEWEST_DATA_VERSION: u32 = 2;

    fn version(query: &[(&str, &str)], body: Value) -> Result<u32, Invalid> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        requested_data_version(&query, &body, Handling::Lenient, NEWEST_DATA_VERSION)
    }

    fn parameters(parameter: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": parameter})
    }

    #[test]
    fn no_version_means_the_newest() {
        assert_eq!(version(&[], Value::Null).unwrap(), NEWEST_DATA_VERSION);
        assert_eq!(
            version(&[], parameters(json!([]))).unwrap(),
            NEWEST_DATA_VERSION
        );
    }

    #[test]
    fn the_version_comes_from_the_body_or_the_query() {
        let body = parameters(json!([{"name": "dataVersion", "valueInteger": 1}]));
        assert_eq!(version(&[], body.clone()).unwrap(), 1);
        assert_eq!(version(&[("dataVersion", "1")], Value::Null).unwrap(), 1);
        assert_eq!(version(&[("dataVersion", "1")], body).unwrap(), 1);
    }

    #[test]
    fn bad_versions_are_refused() {
        let bad_bodies = [
            json!({"resourceType": "Patient"}),
            json!([1, 2]),
            parameters(json!([{"name": "dataVersion", "valueInteger": 0}])),
            parameters(json!([{"name": "dataVersion", "valueInteger": -1}])),
            parameters(json!([{"name": "dataVersion", "valueInteger": 1.5}])),
            parameters(json!([{"name": "dataVersion", "valueString": "1"}])),
            parameters(json!([{"name": "dataVersion"}])),
            parameters(json!([{"name": "dataVersion", "valueInteger": 99}])),
            parameters(json!([
                {"name": "dataVersion", "valueInteger": 1},
                {"name": "dataVersion", "valueInteger": 1}
            ])),
            json!({"resourceType": "Parameters", "surprise": true}),
            json!({"resourceType": "Parameters", "id": null}),
        ];
        for body in bad_bodies {
            assert!(
                matches!(version(&[], body.clone()), Err(Invalid(_))),
                "{body}"
            );
        }
        for query in ["0", "x", "99", "-1", "4294967296"] {
            assert!(
                version(&[("dataVersion", query)], Value::Null).is_err(),
                "{query}"
            );
        }
    }

    #[test]
    fn the_query_and_body_must_agree() {
        let body = parameters(json!([{"name": "dataVersion", "valueInteger": 1}]));
        assert!(version(&[("dataVersion", "2")], body).is_err());
    }

    #[test]
    fn events_name_the_type_and_maybe_a_version() {
        let newest = NEWEST_DATA_VERSION;
        let plain = json!({"type": "data-migration", "dataVersion": 1});
        assert_eq!(event_data_version(&plain, newest).unwrap(), 1);
        let latest = json!({"type": "data-migration"});
        assert_eq!(event_data_version(&latest, newest).unwrap(), newest);
        let as_parameters = parameters(json!([{"name": "dataVersion", "valueInteger": 2}]));
        assert_eq!(event_data_version(&as_parameters, newest).unwrap(), 2);
        for bad in [
            json!({"type": "export"}),
            json!({"dataVersion": 1}),
            json!({"type": "data-migration", "dataVersion": 0}),
            json!({"type": "data-migration", "dataVersion": 99}),
            json!({"type": "data-migration", "dataVersion": "1"}),
            json!({"type": "data-migration", "extra": true}),
            parameters(json!([{"name": "dataVersion", "valueInteger": 1}, {"name": "x"}])),
            json!("data-migration"),
            json!({"resourceType": "Patient"}),
        ] {
            assert!(event_data_version(&bad, newest).is_err(), "{bad}");
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("resourceType".to_owned()),
                        Just("parameter".to_owned()),
                        Just("name".to_owned()),
                        Just("valueInteger".to_owned()),
                        Just("type".to_owned()),
                        Just("dataVersion".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..4,
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_a_version_or_a_400(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            match requested_data_version(&[], &body, Handling::Lenient, NEWEST_DATA_VERSION) {
                Ok(version) => proptest::prop_assert!((1..=NEWEST_DATA_VERSION).contains(&version)),
                Err(error) => proptest::prop_assert!(matches!(error, Invalid(_))),
            }
        }

        #[test]
        fn any_json_body_or_event_is_a_version_or_refused(value in json_value()) {
            let body = value.to_string();
            if let Ok(version) = requested_data_version(&[], body.as_bytes(), Handling::Strict, NEWEST_DATA_VERSION) {
                proptest::prop_assert!((1..=NEWEST_DATA_VERSION).contains(&version));
            }
            if let Ok(version) = event_data_version(&value, NEWEST_DATA_VERSION) {
                proptest::prop_assert!((1..=NEWEST_DATA_VERSION).contains(&version));
            }
        }

        #[test]
        fn every_known_version_round_trips(version in 1..=NEWEST_DATA_VERSION) {
            let body = parameters(json!([{"name": "dataVersion", "valueInteger": version}]));
            proptest::prop_assert_eq!(version_of(body), version);
        }
    }

    fn version_of(body: Value) -> u32 {
        version(&[], body).unwrap()
    }

    #[test]
    fn malformed_json_is_invalid() {
        let result = requested_data_version(&[], b"{\"resourceType\":", Handling::Lenient, 2);
        assert!(matches!(result, Err(Invalid(_))));
    }

    #[test]
    fn unknown_parameters_are_refused_only_when_strict() {
        let body = parameters(json!([{"name": "other", "valueString": "x"}])).to_string();
        let query = vec![("other".to_owned(), "x".to_owned())];
        assert!(requested_data_version(&[], body.as_bytes(), Handling::Lenient, 2).is_ok());
        assert!(requested_data_version(&[], body.as_bytes(), Handling::Strict, 2).is_err());
        assert!(requested_data_version(&query, b"", Handling::Lenient, 2).is_ok());
        assert!(requested_data_version(&query, b"", Handling::Strict, 2).is_err());
    }
}
