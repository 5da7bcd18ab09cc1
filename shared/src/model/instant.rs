//! FHIR `instant` values as the service writes them.
//!
//! Every instant is UTC with exactly millisecond precision, so that the text sorts in time
//! order: the search indexes rely on that when they sort by `requestTime`.

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Epoch milliseconds, as leases and back-offs are stored.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant `ms` epoch milliseconds name, if it is one an instant can write.
pub fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    (0..=9999).contains(&at.year()).then_some(at)
}

/// The current time, truncated to what an instant can carry.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond())
        .expect("a millisecond read from a valid time is valid")
}

/// `2026-11-27T12:00:00.123Z`.
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("every UTC time in the years 0..=9999 formats")
}

/// Parses an instant written by [`format`].
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(text, FORMAT)
        .ok()
        .map(|at| at.assume_utc())
}

/// `Fri, 27 Nov 2026 12:00:00 GMT`, for `Last-Modified` and `Expires`.
pub fn http_date(at: OffsetDateTime) -> String {
    httpdate::fmt_http_date(SystemTime::from(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millisecond_precision() {
        let at = now();
        let text = format(at);
        assert_eq!(text.len(), "2026-11-27T12:00:00.123Z".len());
        assert_eq!(parse(&text), Some(at));
    }

    #[test]
    fn text_order_is_time_order() {
        let early = time::macros::datetime!(2026-01-02 03:04:05.006 UTC);
        let late = time::macros::datetime!(2026-01-02 03:04:05.060 UTC);
        assert!(format(early) < format(late));
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at = time::macros::datetime!(2026-11-27 12:00:00 UTC);
        assert_eq!(http_date(at), "Fri, 27 Nov 2026 12:00:00 GMT");
    }
}
