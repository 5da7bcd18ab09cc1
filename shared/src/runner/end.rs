//! How runs end: a job completed, given up, a failed attempt that backs off, a yield at the
//! deadline, and a write that lost its race.

use std::time::Duration;

use super::{RunOutcome, Runner, attempt_failure};
use crate::model::output::completion_output;
use crate::model::run::millis;
use crate::model::{Attempts, JobId, JobStatus, Parameters, StoredJob};
use crate::store::{RunStore, StoreError};

/// Tries of a write that lets go of a lease, and the wait after the first (doubled after
/// each): 50 ms to 400 ms, under a second in all.
const LET_GO_ATTEMPTS: u32 = 5;
const LET_GO_FIRST_WAIT: Duration = Duration::from_millis(50);

impl<S: RunStore> Runner<'_, S> {
    /// Completes the job, but only once the stored data version has reached the job's.
    pub(super) async fn complete(&self, current: &StoredJob) -> Result<RunOutcome, StoreError> {
        let reached = self.store.data_version().await?;
        let target = current.job.data_version.unwrap_or_default();
        if reached < target {
            let error = StoreError::Failed(format!(
                "the stored data version is {reached}, below the job's {target}"
            ));
            return self.failed(current, "completing", error).await;
        }
        let output = completion_output(reached, &current.run.clone().unwrap_or_default());
        self.finish(current, JobStatus::Completed, output, RunOutcome::Completed)
            .await
    }

    pub(super) async fn give_up(
        &self,
        current: &StoredJob,
        reason: String,
    ) -> Result<RunOutcome, StoreError> {
        tracing::error!(job = %current.job.id, %reason, "job failed");
        let output = Parameters::failure(reason);
        self.finish(current, JobStatus::Error, output, RunOutcome::GaveUp)
            .await
    }

    async fn finish(
        &self,
        current: &StoredJob,
        status: JobStatus,
        output: Parameters,
        outcome: RunOutcome,
    ) -> Result<RunOutcome, StoreError> {
        let next = current.finished(status, output, self.now(), self.store.retention());
        if self.store.save(&current.job.meta.version_id, &next).await? {
            Ok(outcome)
        } else {
            self.lost_write(&current.job.id).await
        }
    }

    /// This attempt failed while `doing` something: the job lets go of its lease, counts the
    /// failure (or, when DynamoDB throttled it, the throttling, which never ends the job) and
    /// waits before the next attempt. The error's details go to the log; the job
    /// keeps only its summary, which its OperationOutcome shows if it is given up.
    pub(super) async fn failed(
        &self,
        current: &StoredJob,
        doing: &str,
        error: StoreError,
    ) -> Result<RunOutcome, StoreError> {
        let reason = attempt_failure(doing, &error);
        tracing::warn!(job = %current.job.id, %error, %reason, "attempt failed");
        let record = |held: StoredJob| {
            let mut next = self.next_revision(&held);
            let attempts = &mut next.run.get_or_insert_default().attempts;
            self.record_failure(attempts, &error, reason.clone());
            async move { self.store.save(&held.job.meta.version_id, &next).await }
        };
        let mine = || async {
            let now = self.store.get(&current.job.id).await?;
            Ok(now.filter(|now| {
                now.job.status == JobStatus::Accepted
                    && now
                        .run
                        .as_ref()
                        .is_some_and(|run| run.attempts.is_held_by(&self.owner))
            }))
        };
        if let Err(error) = self.letting_go_of(current.clone(), record, mine).await {
            tracing::warn!(job = %current.job.id, %error, "could not record the failure");
        }
        Ok(RunOutcome::Failed(reason))
    }

    /// Records a failed attempt: the lease let go, the failure counted (in `throttled` when
    /// DynamoDB throttled it or a conflicting write got there first, which never gives
    /// anything up: [`StoreError::is_pushback`]), and the wait before the next
    /// attempt, which each failure of the same kind in a row doubles.
    pub(super) fn record_failure(
        &self,
        attempts: &mut Attempts,
        error: &StoreError,
        reason: String,
    ) {
        attempts.lease = None;
        let in_a_row = if error.is_pushback() {
            attempts.throttled += 1;
            attempts.throttled
        } else {
            attempts.failures += 1;
            attempts.failures
        };
        let retry_at = self.now() + self.settings.retry_delay_after(in_a_row);
        attempts.retry_at_ms = Some(millis(retry_at));
        attempts.last_error = Some(reason);
    }

    /// Lets go of the job at the deadline, so the next run need not wait for the lease.
    pub(super) async fn release(&self, current: &StoredJob) -> Result<(), StoreError> {
        let mut next = self.next_revision(current);
        if let Some(run) = &mut next.run {
            run.attempts.lease = None;
        }
        // Losing this race is fine: whoever wrote the job has it now.
        let expected = &current.job.meta.version_id;
        self.letting_go(|| self.store.save(expected, &next))
            .await
            .map(drop)
    }

    /// [`Self::letting_go`] of `write(held)`. When it loses its race while `mine` still finds
    /// the item leased to this worker, a write of this run landed and its answer was lost
    /// (a checkpoint, a renewal): it is written once more over the item as it is now, so
    /// the lease is let go all the same.
    pub(super) async fn letting_go_of<H, W, M>(
        &self,
        held: H,
        write: impl Fn(H) -> W,
        mine: impl Fn() -> M,
    ) -> Result<bool, StoreError>
    where
        H: Clone,
        W: Future<Output = Result<bool, StoreError>>,
        M: Future<Output = Result<Option<H>, StoreError>>,
    {
        if self.letting_go(|| write(held.clone())).await? {
            return Ok(true);
        }
        match mine().await? {
            Some(now) => self.letting_go(|| write(now.clone())).await,
            None => Ok(false),
        }
    }

    /// A write that lets go of a lease, tried again a few times, a moment apart, while the
    /// store answers it with a transient error: one that never lands leaves the lease to
    /// run out, and the next claim then counts a run that died. A try whose answer was lost
    /// after it landed makes the next one lose its race, which is fine: it let go.
    pub(super) async fn letting_go<F>(&self, write: impl Fn() -> F) -> Result<bool, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>>,
    {
        let mut wait = LET_GO_FIRST_WAIT;
        for _ in 1..LET_GO_ATTEMPTS {
            match write().await {
                Err(error) if error.is_transient() => {
                    tracing::debug!(%error, "letting go again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                landed => return landed,
            }
        }
        write().await
    }

    /// Why a conditional write lost: a cancel, a pause, or another worker took over.
    pub(super) async fn lost_write(&self, id: &JobId) -> Result<RunOutcome, StoreError> {
        let outcome = self.stopped_by_job(id).await?;
        match outcome {
            Some(RunOutcome::Cancelled) => {
                tracing::info!(job = %id, "cancelled; stopped at the checkpoint")
            }
            Some(RunOutcome::Paused) => {
                tracing::info!(job = %id, "paused; stopped at the checkpoint")
            }
            _ => {}
        }
        Ok(outcome.unwrap_or(RunOutcome::NotRunnable))
    }

    /// How the job stops a run of it or of its segments, if it does: paused, cancelled, or
    /// no longer running.
    pub(super) async fn stopped_by_job(
        &self,
        id: &JobId,
    ) -> Result<Option<RunOutcome>, StoreError> {
        let job = self.store.get(id).await?;
        let paused = job.as_ref().is_some_and(StoredJob::is_paused);
        Ok(match job.map(|job| job.job.status) {
            Some(JobStatus::Accepted) if paused => Some(RunOutcome::Paused),
            Some(JobStatus::Accepted) => None,
            Some(JobStatus::Cancelled) => Some(RunOutcome::Cancelled),
            _ => Some(RunOutcome::NotRunnable),
        })
    }
}
