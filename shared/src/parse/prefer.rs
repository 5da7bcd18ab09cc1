//! The `Prefer` header (RFC 7240): `respond-async`, `handling` and `wait`.

/// How the client asked unknown parameters to be treated (`Prefer: handling=...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Handling {
    #[default]
    Lenient,
    Strict,
}

/// What the `Prefer` headers ask for; preferences the service does not know are ignored,
/// as the RFC asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    pub respond_async: bool,
    pub handling: Handling,
    /// `wait=N`: how many seconds the client would wait for an answer that changes.
    pub wait: Option<u32>,
}

impl Preferences {
    /// Reads every `Prefer` header value; each is a comma-separated list of preferences.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut preferences = Self::default();
        for preference in values.into_iter().flat_map(|text| text.split(',')) {
            let token = preference.split(';').next().unwrap_or("");
            let (name, value) = match token.split_once('=') {
                Some((name, value)) => (name.trim(), value.trim().trim_matches('"')),
                None => (token.trim(), ""),
            };
            if name.eq_ignore_ascii_case("respond-async") {
                preferences.respond_async = true;
            } else if name.eq_ignore_ascii_case("handling") {
                if value.eq_ignore_ascii_case("strict") {
                    preferences.handling = Handling::Strict;
                } else if value.eq_ignore_ascii_case("lenient") {
                    preferences.handling = Handling::Lenient;
                }
            } else if name.eq_ignore_ascii_case("wait")
                && !value.is_empty()
                && value.bytes().all(|b| b.is_ascii_digit())
            {
                // Larger than any wait is served as the longest wait.
                preferences.wait = Some(value.parse().unwrap_or(u32::MAX));
            }
        }
        preferences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_is_a_list_of_preferences() {
        let cases = [
            ("respond-async", true, Handling::Lenient),
            ("respond-async, handling=strict", true, Handling::Strict),
            ("handling=lenient, respond-async", true, Handling::Lenient),
            ("RESPOND-ASYNC; wait=10", true, Handling::Lenient),
            ("handling=\"strict\"", false, Handling::Strict),
            ("return=minimal", false, Handling::Lenient),
            ("respond-asyncx", false, Handling::Lenient),
            ("", false, Handling::Lenient),
        ];
        for (header, respond_async, handling) in cases {
            let prefs = Preferences::parse([header]);
            assert_eq!(prefs.respond_async, respond_async, "{header}");
            assert_eq!(prefs.handling, handling, "{header}");
        }
    }

    #[test]
    fn wait_is_whole_seconds() {
        let cases = [
            ("wait=10", Some(10)),
            ("respond-async, wait=0", Some(0)),
            ("WAIT=\"5\"", Some(5)),
            ("wait=99999999999999", Some(u32::MAX)),
            ("wait=-1", None),
            ("wait=1.5", None),
            ("wait=", None),
            ("wait", None),
        ];
        for (header, wait) in cases {
            assert_eq!(Preferences::parse([header]).wait, wait, "{header}");
        }
    }

    #[test]
    fn prefer_headers_may_repeat() {
        let prefs = Preferences::parse(["handling=strict", "respond-async"]);
        assert!(prefs.respond_async);
        assert_eq!(prefs.handling, Handling::Strict);
    }

    proptest::proptest! {
        #[test]
        fn any_prefer_header_is_read_without_panicking(header in "\\PC{0,80}") {
            let _ = Preferences::parse([header.as_str()]);
        }

        #[test]
        fn respond_async_is_found_anywhere_in_the_list(
            before in proptest::collection::vec("[a-z]{1,8}(=[a-z0-9]{1,5})?", 0..4),
            after in proptest::collection::vec("[a-z]{1,8}(=[a-z0-9]{1,5})?", 0..4),
            upper in proptest::bool::ANY,
        ) {
            let token = if upper { "RESPOND-ASYNC" } else { "respond-async" };
            let list = [before, vec![token.to_owned()], after].concat().join(", ");
            proptest::prop_assert!(Preferences::parse([list.as_str()]).respond_async, "{}", list);
        }
    }
}
