//! How the runner of a job whose segments it drives lets go of the job: at the deadline,
//! with their progress recorded; when every segment left waits after a failure, with the
//! job waiting as they do; and when others hold them, looking once more for a migration
//! they finished meanwhile.

use time::OffsetDateTime;

use super::segments::Survey;
use super::{Flow, RunOutcome, Runner};
use crate::migration::Migration;
use crate::model::{Attempts, MigrationProgress, SegmentKey, SegmentRun, StoredJob};
use crate::store::{RunStore, StoreError};

impl<S: RunStore> Runner<'_, S> {
    /// Lets go of the job at the deadline, with the progress its segments made recorded.
    pub(super) async fn yield_job(
        &self,
        held: &mut StoredJob,
        migration: &dyn Migration,
        progress: &MigrationProgress,
        keys: &[SegmentKey],
    ) -> Result<Flow, StoreError> {
        match self.survey(held, migration, progress, keys).await? {
            Survey::Running(surveyed, _) => {
                // A release that fails is recorded against the job as last written.
                *held = *surveyed;
                self.release(held).await?;
                Ok(Flow::Stop(RunOutcome::Yielded))
            }
            Survey::Ended(flow) => Ok(flow),
        }
    }

    /// Lets go of the job when no segment is left that this worker may run now. When every
    /// one left waits after a failed attempt, the job waits with them, and this run ends as
    /// that failed attempt. Otherwise the others are held by other workers: the worker that
    /// finishes one runs the job next, and the sweeper comes by.
    pub(super) async fn let_go(
        &self,
        held: &StoredJob,
        segments: &[SegmentRun],
        keys: &[SegmentKey],
    ) -> Result<Flow, StoreError> {
        let Some(wait) = segments_wait(segments, self.now()) else {
            self.release(held).await?;
            return Ok(self.look_again(held, keys).await);
        };
        let reason = wait.last_error.clone().unwrap_or_default();
        let mut next = self.next_revision(held);
        next.run.get_or_insert_default().attempts = wait;
        let outcome = if self.store.save(&held.job.meta.version_id, &next).await? {
            RunOutcome::Failed(reason)
        } else {
            self.lost_write(&held.job.id).await?
        };
        Ok(Flow::Stop(outcome))
    }

    /// After letting go of the job: a worker that finished the last segments while this one
    /// held the job could not take it to apply the migration, and may have gone. It wrote
    /// the segment before it tried, and it tried before this release landed, so a read now
    /// sees it: if every segment is done or one was given up, this worker takes the job
    /// again to record it, instead of leaving it to the sweeper.
    ///
    /// The job is no longer this worker's here: a read or claim that fails leaves it to the
    /// sweeper, rather than recording a failure against a job this worker let go of.
    async fn look_again(&self, held: &StoredJob, keys: &[SegmentKey]) -> Flow {
        let not_runnable = Flow::Stop(RunOutcome::NotRunnable);
        let segments = match self.store.segments(keys).await {
            Ok(segments) => segments,
            Err(error) => {
                tracing::warn!(job = %held.job.id, %error, "could not look at the segments again");
                return not_runnable;
            }
        };
        let finished = segments.len() == keys.len()
            && (segments.iter().all(|run| run.done)
                || segments.iter().any(|run| run.gave_up.is_some()));
        if !finished {
            return not_runnable;
        }
        match self.claim(&held.job.id).await {
            Err(error) => {
                tracing::warn!(job = %held.job.id, %error, "could not take the job back");
                not_runnable
            }
            Ok(flow) => flow,
        }
    }
}

/// How the job waits when every segment left waits after a failed attempt: as the one that
/// may run first, so that the job's X-Progress shows the back-off and its cause, and no run
/// of the job comes before a segment may run. `None` while a worker holds a segment: that
/// worker takes the job on when it is done.
fn segments_wait(segments: &[SegmentRun], now: OffsetDateTime) -> Option<Attempts> {
    let unfinished = || segments.iter().filter(|run| !run.is_finished());
    if unfinished().any(|run| !run.attempts.is_backing_off_at(now)) {
        return None;
    }
    let first = unfinished().min_by_key(|run| run.attempts.retry_at_ms)?;
    Some(Attempts {
        lease: None,
        failures: 0,
        ..first.attempts.clone()
    })
}
