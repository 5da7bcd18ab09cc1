//! A job as the service keeps it: the resource, plus what only the service sees (when the
//! record expires, and the worker's run state), and every change of state a job goes
//! through. Both stores and the runner make their writes from these transitions, so no two
//! places can disagree on what a cancel or a finish writes.

use std::time::Duration;

use time::OffsetDateTime;

use super::control::{Action, Control, Pause};
use super::instant::{self, millis};
use super::job::{AsyncJob, JobStatus, Meta};
use super::output::running_output;
use super::parameters::Parameters;
use super::run::RunState;

#[derive(Clone, Debug, PartialEq)]
pub struct StoredJob {
    pub job: AsyncJob,
    /// When the store deletes the record (finished jobs only).
    pub expires_at: Option<OffsetDateTime>,
    /// The worker's lease and checkpoint, once a worker has taken the job.
    pub run: Option<RunState>,
}

impl StoredJob {
    /// A job no worker has touched yet.
    pub fn new(job: AsyncJob) -> Self {
        Self {
            job,
            expires_at: None,
            run: None,
        }
    }

    /// Whether the record still exists for readers at `now`: an expired record is gone even
    /// before the store deletes it.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// Whether an operator holds the job paused.
    pub fn is_paused(&self) -> bool {
        self.run.as_ref().is_some_and(|run| run.paused.is_some())
    }

    /// A copy for the next write: the next `versionId`, `lastUpdated` at `now`.
    pub fn revised(&self, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.job.meta = Meta {
            version_id: self.job.next_version_id(),
            last_updated: instant::format(now),
        };
        next
    }

    /// The job cancelled at `now`; the progress a running job showed in its output goes.
    pub fn cancelled(&self, now: OffsetDateTime, retention: Duration) -> Self {
        let mut next = self.ended(JobStatus::Cancelled, now, retention);
        next.job.output = None;
        next
    }

    /// The job paused or resumed by `control` at `now`, with the action in its output. Either
    /// lets go of the job's lease: its worker stops at its next write, which this write's
    /// version makes fail, and no one counts that as a run that died.
    pub fn paused_or_resumed(&self, control: &Control, now: OffsetDateTime) -> Self {
        let mut next = self.revised(now);
        let run = next.run.get_or_insert_default();
        let held_ms = run
            .paused
            .as_ref()
            .map(|pause| millis(now) - pause.since_ms);
        if let (Action::Resume, Some(held_ms), Some(current)) =
            (control.action, held_ms, run.current.as_mut())
        {
            // The time it was held is no time it ran: its rate and time left leave it out.
            current.started_at_ms = current.started_at_ms.map(|at| at + held_ms);
        }
        run.paused = (control.action == Action::Pause).then(|| Pause {
            by: control.by.clone(),
            since_ms: millis(now),
        });
        run.attempts.lease = None;
        control.record_in(&mut run.controls, now);
        next.job.output = Some(running_output(run));
        next
    }

    /// The job finished at `now` in `status` (`completed` or `error`) with its `output`.
    pub fn finished(
        &self,
        status: JobStatus,
        output: Parameters,
        now: OffsetDateTime,
        retention: Duration,
    ) -> Self {
        let mut next = self.ended(status, now, retention);
        next.job.output = Some(output);
        next
    }

    /// A final status: the record expires a retention later (in whole seconds, as the TTL
    /// keeps it) and no worker holds it.
    fn ended(&self, status: JobStatus, now: OffsetDateTime, retention: Duration) -> Self {
        debug_assert!(status.is_final());
        let mut next = self.revised(now);
        next.job.status = status;
        let expires_at = now + retention;
        next.expires_at =
            Some(expires_at - time::Duration::nanoseconds(expires_at.nanosecond().into()));
        if let Some(run) = &mut next.run {
            run.attempts.lease = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::model::{Attempts, Lease, MigrationProgress};
    use crate::model::{JobType, Parameter};

    const RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    fn running() -> StoredJob {
        let mut stored = StoredJob::new(AsyncJob::accepted(
            JobType::DataMigration,
            2,
            "https://api.test/$data-migration".into(),
            "2026-11-27T12:00:00.000Z",
        ));
        stored.run = Some(RunState {
            attempts: Attempts {
                lease: Some(Lease {
                    owner: "worker".into(),
                    expires_at_ms: 1,
                }),
                ..Attempts::default()
            },
            ..RunState::default()
        });
        stored
    }

    #[test]
    fn every_revision_has_the_next_version_and_the_time_of_the_write() {
        let now = datetime!(2026-11-27 12:00:05.250 UTC);
        let next = running().revised(now);
        assert_eq!(next.job.meta.version_id, "2");
        assert_eq!(next.job.meta.last_updated, "2026-11-27T12:00:05.250Z");
        assert_eq!(next.revised(now).job.meta.version_id, "3");
    }

    #[test]
    fn a_cancelled_job_expires_a_retention_later_and_is_held_by_nobody() {
        let now = datetime!(2026-11-27 13:00:00 UTC);
        let cancelled = running().cancelled(now, RETENTION);
        assert_eq!(cancelled.job.status, JobStatus::Cancelled);
        assert_eq!(
            cancelled.expires_at,
            Some(datetime!(2026-12-27 13:00:00 UTC))
        );
        assert_eq!(cancelled.run.unwrap().attempts.lease, None);
        assert_eq!(cancelled.job.output, None);
    }

    #[test]
    fn the_time_a_job_was_paused_is_no_time_its_migration_ran() {
        let started = datetime!(2026-12-02 12:00:00 UTC);
        let mut job = running();
        job.run.as_mut().unwrap().current = Some(MigrationProgress {
            started_at_ms: Some(millis(started)),
            ..MigrationProgress::starting(1, None)
        });
        let by = |action| Control::new(action, "alice");
        let paused = job.paused_or_resumed(&by(Action::Pause), started + Duration::from_secs(60));
        let resumed =
            paused.paused_or_resumed(&by(Action::Resume), started + Duration::from_secs(3660));
        let current = resumed.run.unwrap().current.unwrap();
        assert_eq!(
            current.started_at_ms,
            Some(millis(started + Duration::from_secs(3600))),
            "an hour held: the segments started an hour later, as far as the rate goes"
        );
    }

    #[test]
    fn a_finished_job_carries_its_output() {
        let now = datetime!(2026-11-27 13:00:00 UTC);
        let output = Parameters::new(vec![Parameter::integer("dataVersion", 2)]);
        let done = running().finished(JobStatus::Completed, output.clone(), now, RETENTION);
        assert_eq!(done.job.status, JobStatus::Completed);
        assert_eq!(done.job.output, Some(output));
        assert!(done.is_live_at(now));
        assert!(!done.is_live_at(now + RETENTION));
    }
}
