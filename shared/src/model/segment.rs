//! One Scan segment of a migration that runs in parallel: what the worker keeps in the
//! segment's own item (its lease, its checkpoint, its failures), apart from the job's item,
//! so segments never contend on one item and the job's item stays small.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Attempts, JobId};

/// Which segment: of which job and migration, and which of how many.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentKey {
    pub job_id: JobId,
    /// The migration's version.
    pub version: u32,
    /// From 0 to `total - 1`: the Scan's `Segment`.
    pub segment: u32,
    /// The Scan's `TotalSegments`.
    pub total: u32,
}

impl SegmentKey {
    /// The keys of every segment of a migration of a job, in order.
    pub fn all(job_id: &JobId, version: u32, total: u32) -> Vec<Self> {
        (0..total)
            .map(|segment| Self {
                job_id: job_id.clone(),
                version,
                segment,
                total,
            })
            .collect()
    }
}

impl std::fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment {}/{}", self.segment + 1, self.total)
    }
}

/// A segment's state. Each write bumps `revision`, and is conditional on the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRun {
    #[serde(flatten)]
    pub key: SegmentKey,
    pub revision: u64,
    /// The segment's lease and its failed attempts, counted as a job's are.
    #[serde(flatten)]
    pub attempts: Attempts,
    /// Where the segment's next page starts; `None` before the first page and once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The segment scanned its last page. Final: a done segment is never written again.
    #[serde(default)]
    pub done: bool,
    pub items_scanned: u64,
    pub items_changed: u64,
    pub items_skipped: u64,
    /// Time spent in its steps.
    pub duration_ms: u64,
    /// Why the segment was given up, after too many failed attempts: the job fails with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up: Option<String>,
}

impl SegmentRun {
    /// A segment nobody has run yet.
    pub fn new(key: SegmentKey) -> Self {
        Self {
            key,
            revision: 0,
            attempts: Attempts::default(),
            cursor: None,
            done: false,
            items_scanned: 0,
            items_changed: 0,
            items_skipped: 0,
            duration_ms: 0,
            gave_up: None,
        }
    }

    /// The next write's copy: one revision up.
    pub fn revised(&self) -> Self {
        Self {
            revision: self.revision + 1,
            ..self.clone()
        }
    }

    pub fn is_finished(&self) -> bool {
        self.done || self.gave_up.is_some()
    }

    /// Whether a worker may start running the segment at `now`: unfinished, no live lease,
    /// not waiting after a failed attempt.
    pub fn is_runnable_at(&self, now: OffsetDateTime) -> bool {
        !self.is_finished()
            && !self.attempts.is_leased_at(now)
            && !self.attempts.is_backing_off_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::run::millis;
    use crate::model::{Lease, instant};

    #[test]
    fn a_segment_is_runnable_only_when_unfinished_free_and_not_waiting() {
        let now = instant::now();
        let key = SegmentKey::all(&JobId::generate(), 2, 4).remove(3);
        assert_eq!(key.to_string(), "segment 4/4");
        let mut run = SegmentRun::new(key);
        assert!(run.is_runnable_at(now));
        run.attempts.lease = Some(Lease {
            owner: "w".into(),
            expires_at_ms: millis(now) + 1000,
        });
        assert!(!run.is_runnable_at(now));
        run.attempts.lease = None;
        run.attempts.retry_at_ms = Some(millis(now) + 1000);
        assert!(!run.is_runnable_at(now));
        run.attempts.retry_at_ms = None;
        run.done = true;
        assert!(!run.is_runnable_at(now));
        assert_eq!(run.revised().revision, 1);
    }
}
