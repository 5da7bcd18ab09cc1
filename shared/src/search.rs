//! Search parameters (SPEC §3): parsing, validation, and the links of a result page.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;
use crate::http::Handling;
use crate::model::{CodeSet, JobId, JobStatus, JobType};
use crate::params::ParamReader;
use crate::store::{Order, Position, SearchQuery};

pub const DEFAULT_COUNT: u32 = 20;
pub const MAX_COUNT: u32 = 1000;
/// More ids than this in one `_id` search are refused: each is a read.
pub const MAX_IDS: usize = 100;

const KNOWN: &[&str] = &[
    "type", "status", "_id", "_count", "_sort", "_total", "_cursor",
];

/// A validated search and the parameters that reproduce it (unknown ones left out).
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub query: SearchQuery,
    canonical: Vec<(&'static str, String)>,
}

impl Search {
    pub fn parse(pairs: &[(String, String)], handling: Handling) -> Result<Self, ApiError> {
        let params = ParamReader::new(pairs, KNOWN, handling)?;
        let types = token_sets::<JobType>(&params, "type")?;
        let statuses = token_sets::<JobStatus>(&params, "status")?;
        let ids = id_sets(&params)?;
        let count = params
            .integer("_count", 1..=MAX_COUNT)?
            .unwrap_or(DEFAULT_COUNT);
        let order = match params.single("_sort")? {
            None | Some("-requestTime") => Order::NewestFirst,
            Some("requestTime") => Order::OldestFirst,
            Some(other) => {
                return Err(ApiError::Invalid(format!(
                    "_sort={other:?}: expected \"-requestTime\" or \"requestTime\""
                )));
            }
        };
        let total = match params.single("_total")? {
            None | Some("none" | "estimate") => false,
            Some("accurate") => true,
            Some(other) => {
                return Err(ApiError::Invalid(format!(
                    "_total={other:?}: expected \"none\", \"estimate\" or \"accurate\""
                )));
            }
        };
        let after = params.single("_cursor")?.map(decode_cursor).transpose()?;

        let mut canonical = Vec::new();
        if let Some(types) = &types {
            canonical.push(("type", join(types.iter().map(|t| t.code()))));
        }
        if let Some(statuses) = &statuses {
            canonical.push(("status", join(statuses.iter().map(|s| s.code()))));
        }
        if let Some(ids) = &ids {
            canonical.push(("_id", join(ids.iter().map(JobId::as_str))));
        }
        canonical.push(("_count", count.to_string()));
        canonical.push((
            "_sort",
            match order {
                Order::NewestFirst => "-requestTime",
                Order::OldestFirst => "requestTime",
            }
            .to_owned(),
        ));
        if total {
            canonical.push(("_total", "accurate".to_owned()));
        }
        Ok(Self {
            query: SearchQuery {
                ids,
                types,
                statuses,
                count: count as usize,
                order,
                after,
                total,
            },
            canonical,
        })
    }

    /// `{base}/AsyncJob?...` for this page.
    pub fn self_url(&self, base: &str) -> String {
        self.url(base, self.query.after.as_ref())
    }

    /// `{base}/AsyncJob?...` for the page that starts after `next`.
    pub fn next_url(&self, base: &str, next: &Position) -> String {
        self.url(base, Some(next))
    }

    fn url(&self, base: &str, after: Option<&Position>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.canonical {
            query.append_pair(name, value);
        }
        if let Some(after) = after {
            query.append_pair("_cursor", &encode_cursor(after));
        }
        format!("{base}/AsyncJob?{}", query.finish())
    }
}

fn join<'a>(codes: impl Iterator<Item = &'a str>) -> String {
    codes.collect::<Vec<_>>().join(",")
}

/// A token parameter: each occurrence is an OR list (`a,b`), occurrences are ANDed. `None`
/// when the parameter is absent.
fn token_sets<T: CodeSet>(
    params: &ParamReader<'_>,
    name: &str,
) -> Result<Option<Vec<T>>, ApiError> {
    let mut result: Option<BTreeSet<T>> = None;
    for value in params.all(name) {
        let set = value
            .split(',')
            .map(|token| {
                // `system|code` and `|code` name the same code.
                let code = token.rsplit('|').next().unwrap_or("").trim();
                T::parse(code).ok_or_else(|| {
                    ApiError::Invalid(format!(
                        "{name}={token:?} is not a known code (known: {})",
                        T::listing()
                    ))
                })
            })
            .collect::<Result<BTreeSet<T>, _>>()?;
        result = Some(match result {
            None => set,
            Some(previous) => previous.intersection(&set).copied().collect(),
        });
    }
    Ok(result.map(|set| set.into_iter().collect()))
}

fn id_sets(params: &ParamReader<'_>) -> Result<Option<Vec<JobId>>, ApiError> {
    let mut result: Option<BTreeSet<JobId>> = None;
    for value in params.all("_id") {
        let set = value
            .split(',')
            .map(|id| {
                JobId::parse(id.trim())
                    .ok_or_else(|| ApiError::Invalid(format!("_id={id:?} is not a valid id")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.len() > MAX_IDS {
            return Err(ApiError::Invalid(format!(
                "_id lists {} ids; at most {MAX_IDS} are accepted",
                set.len()
            )));
        }
        result = Some(match result {
            None => set,
            Some(previous) => previous.intersection(&set).cloned().collect(),
        });
    }
    Ok(result.map(|set| set.into_iter().collect()))
}

fn encode_cursor(position: &Position) -> String {
    URL_SAFE_NO_PAD.encode(position.as_str())
}

fn decode_cursor(text: &str) -> Result<Position, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| Position::parse(&text))
        .ok_or_else(|| ApiError::Invalid("_cursor is not a cursor this server wrote".into()))
}
