//! The `searchset` Bundle that search answers with.

use serde::Serialize;

use super::job::AsyncJob;

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
    pub full_url: String,
    pub resource: AsyncJob,
    pub search: EntrySearch,
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
    pub fn matched(full_url: String, resource: AsyncJob) -> Self {
        Self {
            full_url,
            resource,
            search: EntrySearch { mode: "match" },
        }
    }
}
