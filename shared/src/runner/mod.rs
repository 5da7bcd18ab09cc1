//! The job runner: claims an accepted job with a lease, applies its migrations a page at a
//! time with a checkpoint after each, and finishes it.
//!
//! Every write is conditional on the job's version, so a cancel, or another worker, between
//! two checkpoints makes the next write fail: the runner then stops and writes nothing
//! more. A page that runs long renews the lease while it runs. A run stops cleanly before
//! its deadline and the next one resumes from the last checkpoint. A failed attempt backs
//! off before the next, and after a bounded number in a row the job ends as `error`.

mod advance;
mod budget;
mod claim;
mod end;
mod release;
mod segment;
mod segments;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::migration::{MigrationContext, Registry};
use crate::model::run::millis;
use crate::model::{JobId, Lease, StoredJob};
use crate::store::{RunStore, StoreError};

/// How the runner behaves; see [`crate::config::Config`] for where the values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSettings {
    /// How long a claim, a checkpoint or a renewal holds the job for this worker.
    pub lease: Duration,
    /// Failed attempts in a row after which the job is given up as `error`.
    pub max_attempts: u32,
    /// How long a job waits after its first failure; each further failure in a row doubles
    /// the wait, up to [`Self::max_retry_delay`].
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Items a migration step reads at most.
    pub page_size: usize,
    /// Item writes a second a migration may make at most, all its segments together;
    /// `None`: as fast as it can.
    pub items_per_second: Option<u32>,
    /// How many Scan segments a segmentable migration runs in: a fixed number, or `None` for
    /// one per [`ITEMS_PER_SEGMENT`] items the table is estimated to hold. At most
    /// [`MAX_SEGMENTS`]. A migration that cannot be split runs as one segment.
    pub segments: Option<u32>,
    /// How many segments one worker runs at once.
    pub segments_at_once: usize,
    /// A run stops once less than this is left before its deadline.
    pub stop_before_deadline: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            max_attempts: 8,
            retry_delay: Duration::from_secs(10),
            max_retry_delay: Duration::from_secs(300),
            page_size: 100,
            items_per_second: None,
            segments: None,
            segments_at_once: 8,
            stop_before_deadline: Duration::from_secs(10),
        }
    }
}

/// Items per segment, when the number of segments follows the table's size.
pub const ITEMS_PER_SEGMENT: u64 = 100_000;

/// Segments a migration runs in at most: the transaction that applies a migration checks
/// every segment, and a transaction holds at most 100 items.
pub const MAX_SEGMENTS: u32 = 64;

impl RunSettings {
    /// How many segments a segmentable migration over about `estimate` items runs in.
    pub fn segments_for(&self, estimate: Option<u64>) -> u32 {
        let by_size = || {
            let count = estimate.unwrap_or(0).div_ceil(ITEMS_PER_SEGMENT);
            u32::try_from(count).unwrap_or(MAX_SEGMENTS)
        };
        self.segments.unwrap_or_else(by_size).clamp(1, MAX_SEGMENTS)
    }

    /// The wait before the next attempt after `failures` failures in a row.
    pub fn retry_delay_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.retry_delay
            .saturating_mul(1 << doublings)
            .min(self.max_retry_delay)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// It was cancelled; the runner stopped at its next write.
    Cancelled,
    /// An operator paused it; the runner let go at its next write, and no worker takes it
    /// until it is resumed.
    Paused,
    /// Too many attempts failed in a row; the job is `error` now.
    GaveUp,
    /// The deadline came; the next run resumes from the checkpoint.
    Yielded,
    /// This attempt failed; the job stays accepted and is tried again after a back-off.
    Failed(String),
    /// Nothing to do here now: finished, unknown, held by another worker, backing off, or
    /// asking for a data version this worker's registry does not have.
    NotRunnable,
}

/// Jobs the sweeper looks at per run.
const SWEEP_BATCH: usize = 25;

/// Items of each final status the sweeper looks at for expiry per run.
const REAP_BATCH: usize = 100;

pub struct Runner<'a, S> {
    store: &'a S,
    registry: &'a Registry,
    context: MigrationContext<'a>,
    settings: &'a RunSettings,
    owner: String,
}

/// Whether a run goes on, with the job as last written, or stops.
enum Flow {
    Continue(Box<StoredJob>),
    Stop(RunOutcome),
}

impl<'a, S: RunStore> Runner<'a, S> {
    /// Runs `store`'s jobs with the migrations of `registry`, which work on `context`.
    /// `owner` names this worker in leases; it must differ between concurrent workers.
    pub fn new(
        store: &'a S,
        registry: &'a Registry,
        context: MigrationContext<'a>,
        settings: &'a RunSettings,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            store,
            registry,
            context,
            settings,
            owner: owner.into(),
        }
    }

    /// Runs the job until it finishes, stops, or `deadline` nears. A store that fails
    /// mid-run makes this attempt a failed one; the error is kept for the caller's log.
    pub async fn run(&self, id: &JobId, deadline: Instant) -> Result<RunOutcome, StoreError> {
        let mut current = match self.claim(id).await? {
            Flow::Continue(job) => *job,
            Flow::Stop(outcome) => return Ok(outcome),
        };
        loop {
            if Instant::now() + self.settings.stop_before_deadline >= deadline {
                self.release(&current).await?;
                return Ok(RunOutcome::Yielded);
            }
            current = match self.advance(&current, deadline).await {
                Ok(Flow::Continue(next)) => *next,
                Ok(Flow::Stop(outcome)) => return Ok(outcome),
                Err(error) => return self.failed(&current, "running the job", error).await,
            };
        }
    }

    /// Deletes expired jobs, then runs accepted jobs that no live lease holds and that are
    /// neither paused nor backing off, oldest first: new jobs the stream missed, and jobs whose worker
    /// died, stopped at its deadline or failed. One job's trouble does not stop the others.
    pub async fn sweep(&self, deadline: Instant) -> Result<Vec<(JobId, RunOutcome)>, StoreError> {
        match self.store.reap_expired(REAP_BATCH).await {
            Ok(0) => {}
            Ok(reaped) => tracing::info!(reaped, "deleted expired jobs"),
            Err(error) => tracing::warn!(%error, "could not delete expired jobs"),
        }
        let mut outcomes = Vec::new();
        for stored in self.store.accepted_jobs(SWEEP_BATCH).await? {
            if Instant::now() + self.settings.stop_before_deadline >= deadline {
                break;
            }
            let now = self.now();
            if stored.run.as_ref().is_some_and(|run| {
                run.paused.is_some()
                    || run.attempts.is_leased_at(now)
                    || run.attempts.is_backing_off_at(now)
            }) {
                continue;
            }
            let outcome = match self.run(&stored.job.id, deadline).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(job = %stored.job.id, %error, "the sweeper could not run a job");
                    RunOutcome::Failed(error.summary())
                }
            };
            outcomes.push((stored.job.id, outcome));
        }
        Ok(outcomes)
    }

    /// A copy of the job for the next write: new version, lease renewed.
    fn next_revision(&self, current: &StoredJob) -> StoredJob {
        let mut next = current.revised(self.now());
        next.run.get_or_insert_default().attempts.lease = Some(self.lease());
        next
    }

    /// The time on the store's clock.
    fn now(&self) -> OffsetDateTime {
        self.store.clock().now()
    }

    /// This worker's lease, from now on.
    fn lease(&self) -> Lease {
        Lease {
            owner: self.owner.clone(),
            expires_at_ms: millis(self.now() + self.settings.lease),
        }
    }
}

/// What a failed attempt leaves as the job's last error: what it was doing, and the kind of
/// failure without the SDK's details.
pub fn attempt_failure(doing: &str, error: &StoreError) -> String {
    format!("{doing}: {}", error.summary())
}

/// Why a job was given up, as its OperationOutcome says.
pub fn gave_up_reason(failures: u32, last: &str) -> String {
    format!("gave up after {failures} failed attempts in a row; the last: {last}")
}

/// The wall-clock deadline of a Lambda invocation as an [`Instant`].
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = u64::try_from(millis(OffsetDateTime::now_utc())).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
