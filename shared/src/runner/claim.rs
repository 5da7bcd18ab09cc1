//! Claiming a job: whether this worker may run it now, and the write that says it does.

use super::{Flow, RunOutcome, Runner, gave_up_reason};
use crate::model::{JobId, JobStatus, RunState, StoredJob, instant};
use crate::store::{RunStore, StoreError};

impl<S: RunStore> Runner<'_, S> {
    pub(super) async fn claim(&self, id: &JobId) -> Result<Flow, StoreError> {
        let not_runnable = Ok(Flow::Stop(RunOutcome::NotRunnable));
        let Some(current) = self.store.get(id).await? else {
            return not_runnable;
        };
        if current.job.status != JobStatus::Accepted {
            return not_runnable;
        }
        let now = instant::now();
        let run = current.run.clone().unwrap_or_default();
        let mine = run
            .lease
            .as_ref()
            .is_some_and(|lease| lease.owner == self.owner);
        if run.is_leased_at(now) && !mine {
            return not_runnable;
        }
        if let Some(reason) = self.unknown_version(&current, &run) {
            // Left for a worker that knows the version: a newer deployment, or a cancel.
            tracing::warn!(job = %id, %reason, "left alone");
            return not_runnable;
        }
        // A lease that ran out without being let go is a run that died.
        let died = run.lease.is_some() && !run.is_leased_at(now) && !mine;
        let failures = run.failures + u32::from(died);
        if failures >= self.settings.max_attempts {
            let last = match (&run.last_error, died) {
                (_, true) | (None, _) => {
                    "a worker stopped without finishing (crashed or timed out)"
                }
                (Some(error), false) => error.as_str(),
            };
            let reason = gave_up_reason(failures, last);
            return self.give_up(&current, reason).await.map(Flow::Stop);
        }
        if run.is_backing_off_at(now) {
            return not_runnable;
        }
        let mut next = self.next_revision(&current);
        next.job
            .transaction_time
            .get_or_insert_with(|| instant::format(now));
        let next_run = next.run.get_or_insert_default();
        next_run.failures = failures;
        if next_run.plan.is_none() {
            let target = current.job.data_version.unwrap_or_default();
            next_run.plan = Some(self.registry.plan(self.store.data_version().await?, target));
        }
        Ok(
            if self.store.save(&current.job.meta.version_id, &next).await? {
                Flow::Continue(Box::new(next))
            } else {
                Flow::Stop(RunOutcome::NotRunnable)
            },
        )
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
