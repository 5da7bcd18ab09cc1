//! Search parameters: parsing, validation, and the links of a result page.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Invalid;
use super::params::ParamReader;
use super::prefer::Handling;
use crate::model::{CodeSet, JobId, JobStatus, JobType};
use crate::store::{Order, Position, SearchQuery};

pub const DEFAULT_COUNT: u32 = 20;
pub const MAX_COUNT: u32 = 1000;
/// More ids than this in one `_id` search are refused: each is a read.
pub const MAX_IDS: usize = 100;

const KNOWN: &[&str] = &[
    "type", "status", "_id", "_count", "_sort", "_total", "_cursor",
];

/// Bytes of the MAC a cursor carries; enough to make guessing hopeless.
const CURSOR_MAC_BYTES: usize = 16;

/// A validated search and the parameters that reproduce it (unknown ones left out).
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub query: SearchQuery,
    canonical: Vec<(&'static str, String)>,
    cursor_key: Vec<u8>,
}

impl Search {
    /// `cursor_key` signs the cursors of next links, and checks the one given: a cursor
    /// from another search, or altered in any way, is refused.
    pub fn parse(
        pairs: &[(String, String)],
        handling: Handling,
        cursor_key: &[u8],
    ) -> Result<Self, Invalid> {
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
                return Err(Invalid(format!(
                    "_sort={other:?}: expected \"-requestTime\" or \"requestTime\""
                )));
            }
        };
        let total = match params.single("_total")? {
            None | Some("none" | "estimate") => false,
            Some("accurate") => true,
            Some(other) => {
                return Err(Invalid(format!(
                    "_total={other:?}: expected \"none\", \"estimate\" or \"accurate\""
                )));
            }
        };
        let cursor = params.single("_cursor")?;
        let mut search = Self {
            query: SearchQuery {
                ids,
                types,
                statuses,
                count: count as usize,
                order,
                after: None,
                total,
            },
            canonical: Vec::new(),
            cursor_key: cursor_key.to_vec(),
        };
        search.canonical = canonical(&search.query);
        search.query.after = cursor.map(|text| search.decode_cursor(text)).transpose()?;
        Ok(search)
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
            query.append_pair("_cursor", &self.encode_cursor(after));
        }
        format!("{base}/AsyncJob?{}", query.finish())
    }

    /// The MAC of a position within this search.
    fn cursor_mac(&self, position: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cursor_key)
            .expect("HMAC takes keys of any length");
        for (name, value) in &self.canonical {
            mac.update(format!("{name}={value}&").as_bytes());
        }
        mac.update(position.as_bytes());
        mac
    }

    /// `{position}.{mac}`, both base64url.
    fn encode_cursor(&self, position: &Position) -> String {
        let mac = self.cursor_mac(position.as_str()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(position.as_str()),
            URL_SAFE_NO_PAD.encode(&mac[..CURSOR_MAC_BYTES])
        )
    }

    fn decode_cursor(&self, text: &str) -> Result<Position, Invalid> {
        let refused = || Invalid("_cursor is not a cursor of this search".into());
        let (position, mac) = text.split_once('.').ok_or_else(refused)?;
        let position = URL_SAFE_NO_PAD
            .decode(position)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(refused)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| refused())?;
        if mac.len() != CURSOR_MAC_BYTES {
            return Err(refused());
        }
        self.cursor_mac(&position)
            .verify_truncated_left(&mac)
            .map_err(|_| refused())?;
        Position::parse(&position).ok_or_else(refused)
    }
}

/// The parameters that reproduce `query`, in a fixed order and spelling: the query string of
/// its links, and what its cursors are bound to.
fn canonical(query: &SearchQuery) -> Vec<(&'static str, String)> {
    let mut canonical = Vec::new();
    if let Some(types) = &query.types {
        canonical.push(("type", join(types.iter().map(|t| t.code()))));
    }
    if let Some(statuses) = &query.statuses {
        canonical.push(("status", join(statuses.iter().map(|s| s.code()))));
    }
    if let Some(ids) = &query.ids {
        canonical.push(("_id", join(ids.iter().map(JobId::as_str))));
    }
    canonical.push(("_count", query.count.to_string()));
    let sort = match query.order {
        Order::NewestFirst => "-requestTime",
        Order::OldestFirst => "requestTime",
    };
    canonical.push(("_sort", sort.to_owned()));
    if query.total {
        canonical.push(("_total", "accurate".to_owned()));
    }
    canonical
}

fn join<'a>(codes: impl Iterator<Item = &'a str>) -> String {
    codes.collect::<Vec<_>>().join(",")
}

/// A token parameter: each occurrence is an OR list (`a,b`), occurrences are ANDed. `None`
/// when the parameter is absent.
fn token_sets<T: CodeSet>(params: &ParamReader<'_>, name: &str) -> Result<Option<Vec<T>>, Invalid> {
    let mut result: Option<BTreeSet<T>> = None;
    for value in params.all(name) {
        let set = value
            .split(',')
            .map(|token| {
                // `system|code` and `|code` name the same code.
                let code = token.rsplit('|').next().unwrap_or("").trim();
                T::parse(code).ok_or_else(|| {
                    Invalid(format!(
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

fn id_sets(params: &ParamReader<'_>) -> Result<Option<Vec<JobId>>, Invalid> {
    let mut result: Option<BTreeSet<JobId>> = None;
    for value in params.all("_id") {
        let set = value
            .split(',')
            .map(|id| {
                JobId::parse(id.trim())
                    .ok_or_else(|| Invalid(format!("_id={id:?} is not a valid id")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.len() > MAX_IDS {
            return Err(Invalid(format!(
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &[u8] = b"test-key";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(list: &[(&str, &str)]) -> Result<Search, Invalid> {
        Search::parse(&pairs(list), Handling::Lenient, KEY)
    }

    /// The query string of a URL this module wrote, as pairs.
    fn query_of(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        crate::parse::form_pairs(query.as_bytes())
    }

    fn position() -> Position {
        Position::parse("2026-11-27T12:00:00.000Z#0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a").unwrap()
    }

    #[test]
    fn a_next_link_resumes_the_same_search_after_its_position() {
        let search = parse(&[("status", "accepted,error"), ("_count", "5")]).unwrap();
        let next = search.next_url("https://x", &position());
        let resumed = Search::parse(&query_of(&next), Handling::Strict, KEY).unwrap();
        assert_eq!(resumed.query.after, Some(position()));
        assert_eq!(resumed.query.statuses, search.query.statuses);
        assert_eq!(resumed.query.count, 5);
    }

    #[test]
    fn a_cursor_only_works_in_its_own_search() {
        let search = parse(&[("status", "accepted")]).unwrap();
        let next = search.next_url("https://x", &position());
        let cursor = query_of(&next)
            .into_iter()
            .find(|(name, _)| name == "_cursor")
            .unwrap()
            .1;
        let elsewhere = parse(&[("status", "completed"), ("_cursor", &cursor)]);
        assert!(matches!(elsewhere, Err(Invalid(_))));
        let other_key = Search::parse(&query_of(&next), Handling::Lenient, b"another key");
        assert!(other_key.is_err());
    }

    proptest! {
        #[test]
        fn any_parameters_parse_or_are_refused_without_panicking(
            list in proptest::collection::vec(("[a-z_:]{1,8}", ".{0,40}"), 0..8)
        ) {
            let _ = Search::parse(&list, Handling::Lenient, KEY);
            let _ = Search::parse(&list, Handling::Strict, KEY);
        }

        #[test]
        fn known_parameters_with_any_values_never_panic(
            list in proptest::collection::vec(
                (prop::sample::select(KNOWN.to_vec()), "[a-z0-9,|:/._\\-]{0,30}"),
                0..6,
            )
        ) {
            let list: Vec<(String, String)> =
                list.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let _ = Search::parse(&list, Handling::Strict, KEY);
        }

        #[test]
        fn the_self_link_reproduces_the_search(
            statuses in proptest::sample::subsequence(JobStatus::ALL.to_vec(), 0..=4),
            count in 1u32..=MAX_COUNT,
            oldest_first in any::<bool>(),
            total in any::<bool>(),
        ) {
            let mut list = vec![("_count".to_owned(), count.to_string())];
            if !statuses.is_empty() {
                let codes: Vec<&str> = statuses.iter().map(|s| s.code()).collect();
                list.push(("status".to_owned(), codes.join(",")));
            }
            if oldest_first {
                list.push(("_sort".to_owned(), "requestTime".to_owned()));
            }
            if total {
                list.push(("_total".to_owned(), "accurate".to_owned()));
            }
            let search = Search::parse(&list, Handling::Strict, KEY).unwrap();
            let again = Search::parse(&query_of(&search.self_url("https://x")), Handling::Strict, KEY).unwrap();
            prop_assert_eq!(again, search);
        }

        #[test]
        fn a_tampered_cursor_is_refused(index in 0usize..200, replacement in "[A-Za-z0-9_\\-.]") {
            let search = parse(&[("type", "data-migration")]).unwrap();
            let cursor = query_of(&search.next_url("https://x", &position()))
                .into_iter()
                .find(|(name, _)| name == "_cursor")
                .unwrap()
                .1;
            let index = index % cursor.len();
            let mut tampered = cursor.clone();
            tampered.replace_range(index..=index, &replacement);
            prop_assume!(tampered != cursor);
            let result = parse(&[("type", "data-migration"), ("_cursor", &tampered)]);
            // Base64 may decode two spellings to the same bytes; anything else is refused.
            if let Ok(search) = result {
                prop_assert_eq!(search.query.after, Some(position()));
            }
        }

        #[test]
        fn forged_cursors_are_refused(cursor in "[A-Za-z0-9_\\-.]{1,120}") {
            prop_assert!(parse(&[("_cursor", &cursor)]).is_err());
        }
    }
}
