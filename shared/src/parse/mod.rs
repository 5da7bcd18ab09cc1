//! Reading what clients send: preferences, search and kick-off parameters, event payloads.
//! The parsers take plain text and know nothing of HTTP, so the HTTP handlers and the event
//! entrypoints share them.

pub mod kickoff;
mod params;
pub mod prefer;
pub mod search;

/// A request the service cannot act on; the message says why, in words for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Name/value pairs of a query string or a form body, decoded, in order, repeats kept.
pub fn form_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}
