//! What a job's record keeps while it runs: its attempts (lease, failures), plan, checkpoint
//! and operators' controls, and what it reports of them to pollers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use super::instant::millis;
use super::{Attempts, ControlRecord, Pause, instant};

/// One migration the job applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    pub version: u32,
    pub name: String,
    pub items_scanned: u64,
    pub items_changed: u64,
    /// Items the migration could not read, and left as they were.
    #[serde(default)]
    pub items_skipped: u64,
    pub duration_ms: u64,
}

/// The migration under way: what its segments did so far, summed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationProgress {
    pub version: u32,
    /// Where a single scan of the whole table, as a release before segments ran it, goes
    /// on; it becomes the cursor of the migration's one segment. `None` in anything
    /// written since: each segment keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub items_scanned: u64,
    pub items_changed: u64,
    #[serde(default)]
    pub items_skipped: u64,
    pub duration_ms: u64,
    /// About how many items the migration will scan in all, when it can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_items: Option<u64>,
    /// When the migration runs as parallel Scan segments: how many. Each keeps its own
    /// checkpoint; the counts here are their sums, and the duration the time since they
    /// started, however many ran at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// When its segments were started, in epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<i64>,
}

impl MigrationProgress {
    /// A migration before its first page, over about `estimated_items`.
    pub fn starting(version: u32, estimated_items: Option<u64>) -> Self {
        Self {
            version,
            cursor: None,
            items_scanned: 0,
            items_changed: 0,
            items_skipped: 0,
            duration_ms: 0,
            estimated_items,
            segments: None,
            started_at_ms: None,
        }
    }

    /// Scanned items per second so far.
    pub fn rate(&self) -> u64 {
        self.items_scanned
            .saturating_mul(1000)
            .checked_div(self.duration_ms)
            .unwrap_or(0)
    }

    /// `2600 of ~20000 items (13%)`, or `2600 items` without an estimate (or once the scan
    /// has passed it); `in 8 segments` after it when the scan runs in parallel.
    fn describe(&self) -> String {
        let items = self.describe_items();
        match self.segments.filter(|segments| *segments > 1) {
            Some(segments) => format!("{items} in {segments} segments"),
            None => items,
        }
    }

    fn describe_items(&self) -> String {
        match self.estimated_items {
            Some(total) if total > self.items_scanned => format!(
                "{} of ~{total} items ({}%)",
                self.items_scanned,
                u128::from(self.items_scanned) * 100 / u128::from(total)
            ),
            _ => format!("{} items", self.items_scanned),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    /// The job's lease and its failed attempts.
    #[serde(flatten)]
    pub attempts: Attempts,
    /// The versions this job applies, in order, fixed when it first starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<MigrationReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<MigrationProgress>,
    /// Set while an operator holds the job: no worker takes it (see `control.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// What operators did to the job, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlRecord>,
}

impl RunState {
    /// `X-Progress`: `queued`, `migration 2/3: 4000 of ~20000 items (20%), ~5 s left`,
    /// `migration 2/3: 4000 items` without an estimate, or, while the job waits after a
    /// failed or throttled attempt, `migration 2/3: 4000 items, retrying in 40 s: throttled`;
    /// `paused by alice since …; migration 2/3: 4000 items` while it is paused.
    pub fn progress(&self) -> String {
        self.progress_at(instant::now())
    }

    pub fn progress_at(&self, now: OffsetDateTime) -> String {
        let Some(pause) = &self.paused else {
            return self.running_progress_at(now);
        };
        // Who holds the job comes first; where it stands follows where it fits, with no
        // time left or retry (nothing moves while the job is held).
        let (held, place) = (pause.describe(), self.running_progress_at(now));
        if held.len() + place.len() < 98 {
            format!("{held}; {place}")
        } else {
            held
        }
    }

    fn running_progress_at(&self, now: OffsetDateTime) -> String {
        let Some(plan) = &self.plan else {
            return "queued".to_owned();
        };
        let position = self.applied.len() + 1;
        let line = match &self.current {
            _ if position > plan.len() => {
                return format!("finishing: {} migrations applied", plan.len());
            }
            Some(current) => format!(
                "migration {position}/{}: {}",
                plan.len(),
                current.describe()
            ),
            None => format!("migration {position}/{}: starting", plan.len()),
        };
        let waiting_ms = self
            .attempts
            .retry_at_ms
            .map(|at| at - millis(now))
            .filter(|wait| *wait > 0);
        let tail = match waiting_ms {
            _ if self.paused.is_some() => String::new(),
            Some(wait) => {
                let cause = if self.attempts.throttled > 0 {
                    "throttled"
                } else {
                    "after a failure"
                };
                let seconds = u64::try_from(wait).unwrap_or(0).div_ceil(1000);
                format!(", retrying in {}: {cause}", roughly(seconds))
            }
            None => self
                .seconds_left()
                .map(|seconds| format!(", ~{} left", roughly(seconds)))
                .unwrap_or_default(),
        };
        // The tail only where it fits: the header stays under 100 characters.
        if line.len() + tail.len() < 100 {
            line + &tail
        } else {
            line
        }
    }

    /// Seconds until the whole job is done at the rate so far: the rest of this migration's
    /// scan, and a whole scan for each migration after it (each walks the table). `None`
    /// before there is an estimate of the table's size and a rate.
    pub fn seconds_left(&self) -> Option<u64> {
        let plan = self.plan.as_ref()?;
        let current = self.current.as_ref()?;
        let total = current.estimated_items?;
        let rate = current.rate();
        // DynamoDB's item count lags the table by hours and reads 0 for a new one: an
        // estimate of nothing, or one the last scan has passed, says nothing about what is
        // left.
        if rate == 0 || total == 0 {
            return None;
        }
        let later = plan.len().saturating_sub(self.applied.len() + 1) as u64;
        let items_left = total
            .saturating_sub(current.items_scanned)
            .saturating_add(total.saturating_mul(later));
        (items_left > 0).then(|| items_left.div_ceil(rate))
    }
}

/// `45 s`, `12 min`, `3 h 5 min`.
fn roughly(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Seconds a poller should wait: short while the job moves, longer while it is queued or
/// its worker has gone quiet, and longest while it is paused.
pub fn poll_interval_seconds(
    run: Option<&RunState>,
    last_updated: &str,
    now: OffsetDateTime,
) -> u32 {
    let moving = run.is_some_and(|run| run.attempts.is_leased_at(now))
        && instant::parse(last_updated).is_some_and(|at| now - at < time::Duration::seconds(10));
    match run {
        // Nothing moves until someone resumes it.
        Some(run) if run.paused.is_some() => 10,
        _ if moving => 1,
        Some(run) if run.plan.is_some() => 3,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lease;

    #[test]
    fn progress_reads_as_documented() {
        let mut run = RunState::default();
        assert_eq!(run.progress(), "queued");
        run.plan = Some(vec![1, 2, 3]);
        assert_eq!(run.progress(), "migration 1/3: starting");
        run.applied.push(MigrationReport {
            version: 1,
            name: "a".into(),
            items_scanned: 10,
            items_changed: 1,
            items_skipped: 0,
            duration_ms: 5,
        });
        run.current = Some(MigrationProgress {
            version: 2,
            cursor: Some("x".into()),
            items_scanned: 4000,
            items_changed: 12,
            items_skipped: 0,
            duration_ms: 500,
            estimated_items: None,
            segments: None,
            started_at_ms: None,
        });
        assert_eq!(run.progress(), "migration 2/3: 4000 items");
        run.current.as_mut().unwrap().estimated_items = Some(20_000);
        assert_eq!(run.current.as_ref().unwrap().rate(), 8000);
        // 16,000 items left in this migration and 20,000 in the next, at 8,000 a second.
        assert_eq!(run.seconds_left(), Some(5));
        assert_eq!(
            run.progress(),
            "migration 2/3: 4000 of ~20000 items (20%), ~5 s left"
        );
        run.current.as_mut().unwrap().segments = Some(1);
        assert_eq!(
            run.progress(),
            "migration 2/3: 4000 of ~20000 items (20%), ~5 s left",
            "one segment is the whole scan, not a parallel one"
        );
        run.current.as_mut().unwrap().segments = Some(8);
        assert_eq!(
            run.progress(),
            "migration 2/3: 4000 of ~20000 items (20%) in 8 segments, ~5 s left"
        );
        run.current.as_mut().unwrap().segments = None;
        // An estimate the scan has passed is no longer shown.
        run.current.as_mut().unwrap().estimated_items = Some(3000);
        assert_eq!(run.progress(), "migration 2/3: 4000 items, ~1 s left");
        // An estimate of nothing, or one the last migration has passed, gives no time.
        run.current.as_mut().unwrap().estimated_items = Some(0);
        assert_eq!(run.progress(), "migration 2/3: 4000 items");
        run.plan = Some(vec![1, 2]);
        run.current.as_mut().unwrap().estimated_items = Some(3000);
        assert_eq!(run.progress(), "migration 2/2: 4000 items");
        run.plan = Some(vec![1]);
        run.current = None;
        assert_eq!(run.progress(), "finishing: 1 migrations applied");
    }

    #[test]
    fn a_job_that_waits_after_an_attempt_says_so_instead_of_a_time_left() {
        let now = instant::now();
        let mut run = RunState {
            plan: Some(vec![1, 2]),
            current: Some(MigrationProgress {
                version: 1,
                cursor: Some("x".into()),
                items_scanned: 4000,
                items_changed: 0,
                items_skipped: 0,
                duration_ms: 500,
                estimated_items: Some(20_000),
                segments: None,
                started_at_ms: None,
            }),
            attempts: Attempts {
                retry_at_ms: Some(millis(now) + 39_500),
                throttled: 2,
                ..Attempts::default()
            },
            ..RunState::default()
        };
        assert_eq!(
            run.progress_at(now),
            "migration 1/2: 4000 of ~20000 items (20%), retrying in 40 s: throttled"
        );
        run.attempts.throttled = 0;
        run.attempts.failures = 1;
        assert!(
            run.progress_at(now)
                .ends_with("retrying in 40 s: after a failure")
        );
        // Once the wait is over, the time left again.
        let later = now + time::Duration::minutes(1);
        assert!(
            run.progress_at(later).ends_with("~5 s left"),
            "{}",
            run.progress_at(later)
        );
    }

    #[test]
    fn time_left_reads_in_the_unit_that_fits() {
        assert_eq!(roughly(45), "45 s");
        assert_eq!(roughly(61), "2 min");
        assert_eq!(roughly(3 * 3600 + 5 * 60 + 9), "3 h 5 min");
    }

    #[test]
    fn the_longest_progress_line_stays_under_100_characters() {
        for (scanned, estimate, duration_ms) in [
            (1, u64::MAX, 1),
            (u64::MAX / 2, u64::MAX, 1),
            (10_u64.pow(15), 10_u64.pow(18), 10_u64.pow(9)),
            (99_999_999_999, 100_000_000_000, 1),
        ] {
            let run = RunState {
                plan: Some((1..=99).collect()),
                current: Some(MigrationProgress {
                    version: 1,
                    cursor: Some("x".into()),
                    items_scanned: scanned,
                    items_changed: 0,
                    items_skipped: 0,
                    duration_ms,
                    estimated_items: Some(estimate),
                    segments: Some(64),
                    started_at_ms: None,
                }),
                ..RunState::default()
            };
            let line = run.progress();
            assert!(line.len() < 100, "{} characters: {line}", line.len());
        }
    }

    #[test]
    fn polls_are_quick_only_while_the_job_moves() {
        let now = instant::now();
        let fresh = instant::format(now);
        assert_eq!(poll_interval_seconds(None, &fresh, now), 5);
        let mut run = RunState {
            plan: Some(vec![1]),
            attempts: Attempts {
                lease: Some(Lease {
                    owner: "w".into(),
                    expires_at_ms: millis(now) + 60_000,
                }),
                ..Attempts::default()
            },
            ..RunState::default()
        };
        assert_eq!(poll_interval_seconds(Some(&run), &fresh, now), 1);
        let stale = instant::format(now - time::Duration::minutes(5));
        assert_eq!(poll_interval_seconds(Some(&run), &stale, now), 3);
        run.attempts.lease = None;
        assert_eq!(poll_interval_seconds(Some(&run), &fresh, now), 3);
    }
}
