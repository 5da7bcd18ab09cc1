//! Who runs a piece of work and how its attempts went: what a job's `run` and a segment's
//! item both keep, and the rules both follow.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::instant::millis;

/// Who runs the work, and until when; an expired lease may be taken over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub owner: String,
    pub expires_at_ms: i64,
}

/// The lease, and the failed attempts in a row with the wait before the next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Failed attempts in a row: steps that failed and runs that died holding the lease.
    /// A checkpoint starts the count again; after a bounded number the work is given up.
    #[serde(default, alias = "attempts")]
    pub failures: u32,
    /// Attempts in a row that DynamoDB throttled, or that a conflicting write got ahead of.
    /// Each doubles the wait before the next attempt, as a failure does, but none counts
    /// towards giving the work up: pushback slows it down, it does not fail it. A
    /// checkpoint starts the count again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: u32,
    /// After a failure, when the work may be tried again (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Why the last attempt ended, when its worker died before it could say.
pub const DIED: &str = "a worker stopped without finishing (crashed or timed out)";

impl Attempts {
    pub fn is_leased_at(&self, now: OffsetDateTime) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|lease| lease.expires_at_ms > millis(now))
    }

    /// Whether the work waits at `now` before its next attempt.
    pub fn is_backing_off_at(&self, now: OffsetDateTime) -> bool {
        self.retry_at_ms.is_some_and(|at| at > millis(now))
    }

    /// Whether `owner` holds the lease, live or not.
    pub fn is_held_by(&self, owner: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|lease| lease.owner == owner)
    }

    /// Whether someone other than `owner` holds a live lease at `now`.
    pub fn is_held_by_another_at(&self, owner: &str, now: OffsetDateTime) -> bool {
        self.is_leased_at(now) && !self.is_held_by(owner)
    }

    /// A lease that ran out without being let go, seen by `owner` at `now`: a run that died.
    pub fn died_at(&self, owner: &str, now: OffsetDateTime) -> bool {
        self.lease.is_some() && !self.is_leased_at(now) && !self.is_held_by(owner)
    }

    /// The last failure in words, for the reason the work is given up.
    pub fn last_failure(&self, died: bool) -> &str {
        match (&self.last_error, died) {
            (Some(error), false) => error,
            _ => DIED,
        }
    }

    /// A checkpoint: the run of failures is over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.throttled = 0;
        self.retry_at_ms = None;
        self.last_error = None;
    }
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::instant;

    #[test]
    fn a_lease_that_ran_out_is_a_run_that_died_unless_it_is_ones_own() {
        let now = instant::now();
        let mut attempts = Attempts {
            lease: Some(Lease {
                owner: "a".into(),
                expires_at_ms: millis(now) - 1,
            }),
            last_error: Some("the disk is full".into()),
            ..Attempts::default()
        };
        assert!(attempts.died_at("b", now));
        assert!(!attempts.died_at("a", now));
        assert_eq!(attempts.last_failure(true), DIED);
        assert_eq!(attempts.last_failure(false), "the disk is full");
        attempts.lease.as_mut().unwrap().expires_at_ms = millis(now) + 1000;
        assert!(attempts.is_held_by_another_at("b", now));
        assert!(!attempts.is_held_by_another_at("a", now));
        assert!(!attempts.died_at("b", now));
    }

    #[test]
    fn an_older_job_counting_attempts_reads_as_failures() {
        let attempts: Attempts = serde_json::from_str(r#"{"attempts": 3}"#).unwrap();
        assert_eq!(attempts.failures, 3);
    }
}
