//! The `AsyncJob` resource (docs/api.md) and its codes.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::parameters::Parameters;

/// A FHIR `id`: 1 to 64 of `A-Z a-z 0-9 - .`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// A fresh server-assigned id: a UUIDv7, so ids sort in creation order.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn parse(text: &str) -> Option<Self> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("{text:?} is not a valid id"))
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A closed FHIR code set.
pub trait CodeSet: Copy + Ord + 'static {
    const ALL: &'static [Self];

    fn code(self) -> &'static str;

    fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.code() == code)
    }

    /// `a, b, c`, for error messages.
    fn listing() -> String {
        let codes: Vec<&str> = Self::ALL.iter().map(|value| value.code()).collect();
        codes.join(", ")
    }
}

/// Declares a FHIR code set as an enum that knows its codes.
macro_rules! code_set {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        impl CodeSet for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_set! {
    /// `AsyncJob.status`.
    JobStatus {
        Accepted = "accepted",
        Error = "error",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

impl JobStatus {
    /// Finished jobs never change again.
    pub fn is_final(self) -> bool {
        self != Self::Accepted
    }
}

code_set! {
    /// `AsyncJob.type`.
    JobType {
        DataMigration = "data-migration",
    }
}

/// Serializes as the literal `"AsyncJob"` and accepts nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AsyncJobResourceType {
    #[default]
    AsyncJob,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    pub version_id: String,
    pub last_updated: String,
}

/// The job resource exactly as clients see it.
///
/// Unknown elements are refused when parsing; the inherited DomainResource elements are
/// kept as they came, since the service only stores and returns them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncJob {
    pub resource_type: AsyncJobResourceType,
    pub id: JobId,
    pub meta: Meta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implicit_rules: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contained: Option<Vec<Map<String, Value>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<Vec<Map<String, Value>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modifier_extension: Option<Vec<Map<String, Value>>>,
    pub status: JobStatus,
    pub request_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_time: Option<String>,
    pub request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Parameters>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<JobType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_version: Option<u32>,
}

impl AsyncJob {
    /// A job as the kick-off creates it: `accepted`, version 1.
    pub fn accepted(
        job_type: JobType,
        data_version: u32,
        request: String,
        request_time: &str,
    ) -> Self {
        Self {
            resource_type: AsyncJobResourceType::AsyncJob,
            id: JobId::generate(),
            meta: Meta {
                version_id: "1".to_owned(),
                last_updated: request_time.to_owned(),
            },
            implicit_rules: None,
            language: None,
            text: None,
            contained: None,
            extension: None,
            modifier_extension: None,
            status: JobStatus::Accepted,
            request_time: request_time.to_owned(),
            transaction_time: None,
            request,
            output: None,
            job_type: Some(job_type),
            data_version: Some(data_version),
        }
    }

    /// The `versionId` that the next write gives the job.
    pub fn next_version_id(&self) -> String {
        let current: u64 = self.meta.version_id.parse().unwrap_or(0);
        (current + 1).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_follow_fhir_id_syntax() {
        assert!(JobId::parse("0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a").is_some());
        assert!(JobId::parse("a.b-C9").is_some());
        assert!(JobId::parse(&"a".repeat(64)).is_some());
        for bad in ["", "a/b", "a b", "a_b", "%41", "é", &"a".repeat(65)] {
            assert!(JobId::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn ids_are_exactly_the_fhir_id_syntax(text in "\\PC{0,70}") {
            let fhir_id = (1..=64).contains(&text.len())
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            proptest::prop_assert_eq!(JobId::parse(&text).is_some(), fhir_id);
        }
    }

    #[test]
    fn generated_ids_are_valid_and_time_ordered() {
        let first = JobId::generate();
        let second = JobId::generate();
        assert!(JobId::parse(first.as_str()).is_some());
        assert!(first < second);
    }

    #[test]
    fn fhir_json_round_trip_keeps_inherited_elements() {
        let resource = json!({
            "resourceType": "AsyncJob",
            "id": "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a",
            "meta": {"versionId": "3", "lastUpdated": "2026-11-27T12:00:01.000Z"},
            "implicitRules": "http://example.org/rules",
            "language": "en",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">job</div>"},
            "contained": [{"resourceType": "Basic", "id": "b"}],
            "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
            "modifierExtension": [{"url": "http://example.org/mod", "valueBoolean": false}],
            "status": "completed",
            "requestTime": "2026-11-27T12:00:00.000Z",
            "transactionTime": "2026-11-27T12:00:00.500Z",
            "request": "https://api.example.org/$data-migration",
            "output": {"resourceType": "Parameters", "parameter": [{"name": "dataVersion", "valueInteger": 2}]},
            "type": "data-migration",
            "dataVersion": 2
        });
        let job: AsyncJob = serde_json::from_value(resource.clone()).unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(serde_json::to_value(&job).unwrap(), resource);
    }

    #[test]
    fn refuses_other_resource_types_unknown_elements_and_codes() {
        let base = json!({
            "resourceType": "AsyncJob", "id": "a",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-27T12:00:00.000Z"},
            "status": "accepted", "requestTime": "2026-11-27T12:00:00.000Z", "request": "x"
        });
        assert!(serde_json::from_value::<AsyncJob>(base.clone()).is_ok());
        for (key, value) in [
            ("resourceType", json!("Task")),
            ("status", json!("bogus")),
            ("type", json!("export")),
            ("surprise", json!(1)),
            ("id", json!("a/b")),
        ] {
            let mut bad = base.clone();
            bad[key] = value;
            assert!(
                serde_json::from_value::<AsyncJob>(bad).is_err(),
                "{key} accepted"
            );
        }
    }

    #[test]
    fn codes_parse_back() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.code()), Some(*status));
        }
        assert_eq!(
            JobType::parse("data-migration"),
            Some(JobType::DataMigration)
        );
        assert_eq!(JobStatus::parse("Accepted"), None);
    }
}
