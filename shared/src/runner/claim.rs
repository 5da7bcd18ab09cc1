//! Claiming a job: whether this worker may run it now, and the write that says it does.

use time::OffsetDateTime;

use super::{Flow, RunOutcome, Runner, gave_up_reason};
use crate::model::{Attempts, JobId, JobStatus, RunState, StoredJob, instant};
use crate::store::{RunStore, StoreError};

/// What a worker may do with work it would claim.
pub(super) enum Verdict {
    /// Nothing now.
    Leave,
    /// Give it up, for this reason.
    GiveUp(String),
    /// Take it, with this many failed attempts in a row so far.
    Take { failures: u32 },
}

impl<S: RunStore> Runner<'_, S> {
    pub(super) async fn claim(&self, id: &JobId) -> Result<Flow, StoreError> {
        let not_runnable = Ok(Flow::Stop(RunOutcome::NotRunnable));
        let Some(current) = self.store.get(id).await? else {
            return not_runnable;
        };
        if current.job.status != JobStatus::Accepted {
            return not_runnable;
        }
        let now = self.now();
        let run = current.run.clone().unwrap_or_default();
        if run.paused.is_some() {
            return Ok(Flow::Stop(RunOutcome::Paused));
        }
        if run.attempts.is_held_by_another_at(&self.owner, now) {
            return not_runnable;
        }
        if let Some(reason) = self.unknown_version(&current, &run) {
            // Left for a worker that knows the version: a newer deployment, or a cancel.
            tracing::warn!(job = %id, %reason, "left alone");
            return not_runnable;
        }
        let failures = match self.verdict(&run.attempts, now) {
            Verdict::Leave => return not_runnable,
            Verdict::GiveUp(reason) => return self.give_up(&current, reason).await.map(Flow::Stop),
            Verdict::Take { failures } => failures,
        };
        let mut next = self.next_revision(&current);
        next.job
            .transaction_time
            .get_or_insert_with(|| instant::format(now));
        let next_run = next.run.get_or_insert_default();
        next_run.attempts.failures = failures;
        if next_run.plan.is_none() {
            let target = current.job.data_version.unwrap_or_default();
            next_run.plan = Some(self.registry.plan(self.store.data_version().await?, target));
        }
        match self.store.save(&current.job.meta.version_id, &next).await {
            Ok(true) => Ok(Flow::Continue(Box::new(next))),
            Ok(false) => not_runnable,
            Err(error) => {
                // The claim may have landed with every answer to it lost: let go of it if
                // the job is this worker's now. Another worker claiming from the same
                // version writes the same version, so the version alone cannot tell.
                if let Err(release) = self.release_if_mine(&next).await {
                    tracing::warn!(job = %id, error = %release, "could not let go of a claim");
                }
                Err(error)
            }
        }
    }

    /// Lets go of the job if it is as `claimed` left it and leased to this worker.
    async fn release_if_mine(&self, claimed: &StoredJob) -> Result<(), StoreError> {
        let Some(now) = self.store.get(&claimed.job.id).await? else {
            return Ok(());
        };
        let held = now
            .run
            .as_ref()
            .is_some_and(|run| run.attempts.is_held_by(&self.owner));
        if held && now.job.meta.version_id == claimed.job.meta.version_id {
            self.release(&now).await?;
        }
        Ok(())
    }

    /// Whether this worker may take work whose attempts are `attempts` at `now`: not while
    /// another worker holds it or it waits after a failure; and a lease that ran out without
    /// being let go is a run that died, which counts as a failed attempt, so work that
    /// failed too often in a row is given up instead.
    pub(super) fn verdict(&self, attempts: &Attempts, now: OffsetDateTime) -> Verdict {
        if attempts.is_held_by_another_at(&self.owner, now) {
            return Verdict::Leave;
        }
        let died = attempts.died_at(&self.owner, now);
        let failures = attempts.failures + u32::from(died);
        if failures >= self.settings.max_attempts {
            return Verdict::GiveUp(gave_up_reason(failures, attempts.last_failure(died)));
        }
        if attempts.is_backing_off_at(now) {
            return Verdict::Leave;
        }
        Verdict::Take { failures }
    }

    /// Why this worker cannot run the job, when its registry lacks a version the job needs:
    /// an older deployment must never complete a job at a lower version.
    fn unknown_version(&self, current: &StoredJob, run: &RunState) -> Option<String> {
        let newest = self.registry.newest();
        let target = current.job.data_version.unwrap_or_default();
        if target > newest {
            return Some(format!(
                "the job asks for data version {target}; this worker's newest migration is {newest}"
            ));
        }
        let missing = run
            .plan
            .iter()
            .flatten()
            .find(|version| self.registry.get(**version).is_none())?;
        Some(format!(
            "the job's plan has migration {missing}, which this worker does not have"
        ))
    }
}
