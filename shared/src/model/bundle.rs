//! The `searchset` Bundle that search answers with.

use serde::Serialize;

use super::job::AsyncJob;
use super::outcome::OperationOutcome;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: &'static str,
    #[serde(rename = "type")]
    pub bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub link: Vec<Link>,
    pub entry: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    pub resource: EntryResource,
    pub search: EntrySearch,
}

/// A match, or a note about the search itself.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum EntryResource {
    Job(Box<AsyncJob>),
    Outcome(OperationOutcome),
}

#[derive(Clone, Debug, Serialize)]
pub struct EntrySearch {
    pub mode: &'static str,
}

impl Bundle {
    pub fn searchset(total: Option<u64>, link: Vec<Link>, entry: Vec<Entry>) -> Self {
        Self {
            resource_type: "Bundle",
            bundle_type: "searchset",
            total,
            link,
            entry,
        }
    }
}

impl Entry {
    pub fn matched(full_url: String, job: AsyncJob) -> Self {
        Self {
            full_url: Some(full_url),
            resource: EntryResource::Job(Box::new(job)),
            search: EntrySearch { mode: "match" },
        }
    }

    /// An OperationOutcome about the search (FHIR's search mode `outcome`).
    pub fn outcome(outcome: OperationOutcome) -> Self {
        Self {
            full_url: None,
            resource: EntryResource::Outcome(outcome),
            search: EntrySearch { mode: "outcome" },
        }
    }
}
