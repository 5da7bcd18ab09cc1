//! The job runner: claims an accepted job with a lease, applies its migrations a page at a
//! time with a checkpoint after each, and finishes it.
//!
//! Every write is conditional on the job's version, so a cancel, or another worker, between
//! two checkpoints makes the next checkpoint fail: the runner then stops and writes nothing
//! more. A run stops cleanly before its deadline and the next one resumes from the last
//! checkpoint.

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::migration::{MigrationContext, Registry};
use crate::model::run::millis;
use crate::model::{
    IssueCode, JobId, JobStatus, Lease, MigrationProgress, MigrationReport, OperationOutcome,
    Parameter, Parameters, StoredJob, instant,
};
use crate::store::{RunStore, StoreError};

/// How the runner behaves; see [`crate::config::Config`] for where the values come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSettings {
    /// How long a claim or a checkpoint holds the job for this worker.
    pub lease: Duration,
    /// Runs that may end without a checkpoint before the job is given up as `error`.
    pub max_attempts: u32,
    /// Items a migration step reads at most.
    pub page_size: usize,
    /// A run stops once less than this is left before its deadline.
    pub stop_before_deadline: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            max_attempts: 3,
            page_size: 100,
            stop_before_deadline: Duration::from_secs(10),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// It was cancelled; the runner stopped at its next checkpoint.
    Cancelled,
    /// Too many runs failed; the job is `error` now.
    GaveUp,
    /// The deadline came; the next run resumes from the checkpoint.
    Yielded,
    /// A step failed; the job stays accepted and is tried again later.
    Failed(String),
    /// Nothing to do here: finished, unknown, or another worker holds it.
    NotRunnable,
}

/// Jobs the sweeper looks at per run.
const SWEEP_BATCH: usize = 25;

pub struct Runner<'a, S> {
    store: &'a S,
    registry: &'a Registry,
    context: MigrationContext<'a>,
    settings: &'a RunSettings,
    owner: String,
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

    /// Runs the job until it finishes, stops, or `deadline` nears.
    pub async fn run(&self, id: &JobId, deadline: Instant) -> Result<RunOutcome, StoreError> {
        let mut current = match self.claim(id).await? {
            Flow::Continue(job) => *job,
            Flow::Stop(outcome) => return Ok(outcome),
        };
        loop {
            if Instant::now() + self.settings.stop_before_deadline >= deadline {
                self.release(&current, None).await?;
                return Ok(RunOutcome::Yielded);
            }
            current = match self.advance(&current).await? {
                Flow::Continue(next) => *next,
                Flow::Stop(outcome) => return Ok(outcome),
            };
        }
    }

    /// Migrates the next page of the job's plan and checkpoints it, or finishes the job when
    /// the plan is done.
    async fn advance(&self, current: &StoredJob) -> Result<Flow, StoreError> {
        let run = current.run.clone().unwrap_or_default();
        let plan = run.plan.clone().unwrap_or_default();
        let Some(&version) = plan.get(run.applied.len()) else {
            return self.complete(current).await.map(Flow::Stop);
        };
        let Some(migration) = self.registry.get(version) else {
            let reason = format!("migration {version} is not registered");
            return self.give_up(current, reason).await.map(Flow::Stop);
        };
        let mut progress = run
            .current
            .filter(|progress| progress.version == version)
            .unwrap_or(MigrationProgress {
                version,
                cursor: None,
                items_scanned: 0,
                items_changed: 0,
                duration_ms: 0,
            });
        let started = Instant::now();
        let step = match migration
            .step(&self.context, progress.cursor.as_deref())
            .await
        {
            Ok(step) => step,
            Err(error) => {
                let reason = format!("migration {version} ({}): {error}", migration.name());
                tracing::warn!(job = %current.job.id, %reason, "step failed");
                self.release(current, Some(reason.clone())).await?;
                return Ok(Flow::Stop(RunOutcome::Failed(reason)));
            }
        };
        progress.items_scanned += step.items_scanned;
        progress.items_changed += step.items_changed;
        progress.duration_ms += u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.cursor = step.next;
        self.checkpoint(current, progress, migration.name()).await
    }

    /// Records `progress`; when its migration is done, records it as applied and moves the
    /// data version up in the same write.
    async fn checkpoint(
        &self,
        current: &StoredJob,
        progress: MigrationProgress,
        name: &str,
    ) -> Result<Flow, StoreError> {
        let mut next = self.next_revision(current);
        let next_run = next.run.get_or_insert_default();
        next_run.attempts = 0;
        next_run.last_error = None;
        let expected = &current.job.meta.version_id;
        let written = if progress.cursor.is_some() {
            next_run.current = Some(progress);
            self.store.save(expected, &next).await?
        } else {
            let version = progress.version;
            next_run.current = None;
            next_run.applied.push(MigrationReport {
                version,
                name: name.to_owned(),
                items_scanned: progress.items_scanned,
                items_changed: progress.items_changed,
                duration_ms: progress.duration_ms,
            });
            self.store.save_advancing(expected, &next, version).await?
                || (self.unchanged(current).await? && self.store.save(expected, &next).await?)
        };
        if written {
            Ok(Flow::Continue(Box::new(next)))
        } else {
            self.lost_write(&current.job.id).await.map(Flow::Stop)
        }
    }

    /// Runs accepted jobs that no live lease holds, oldest first: new jobs the stream
    /// missed, and jobs whose worker died or stopped at its deadline.
    pub async fn sweep(&self, deadline: Instant) -> Result<Vec<(JobId, RunOutcome)>, StoreError> {
        let mut outcomes = Vec::new();
        for stored in self.store.accepted_jobs(SWEEP_BATCH).await? {
            if Instant::now() + self.settings.stop_before_deadline >= deadline {
                break;
            }
            if stored
                .run
                .as_ref()
                .is_some_and(|run| run.is_leased_at(instant::now()))
            {
                continue;
            }
            let outcome = self.run(&stored.job.id, deadline).await?;
            outcomes.push((stored.job.id, outcome));
        }
        Ok(outcomes)
    }

    async fn claim(&self, id: &JobId) -> Result<Flow, StoreError> {
        let Some(current) = self.store.get(id).await? else {
            return Ok(Flow::Stop(RunOutcome::NotRunnable));
        };
        let run = current.run.clone().unwrap_or_default();
        let held_elsewhere = run.is_leased_at(instant::now())
            && run
                .lease
                .as_ref()
                .is_some_and(|lease| lease.owner != self.owner);
        if current.job.status != JobStatus::Accepted || held_elsewhere {
            return Ok(Flow::Stop(RunOutcome::NotRunnable));
        }
        if run.attempts >= self.settings.max_attempts {
            let reason = format!(
                "gave up after {} attempts; last error: {}",
                run.attempts,
                run.last_error
                    .as_deref()
                    .unwrap_or("none recorded (the worker stopped)")
            );
            return self.give_up(&current, reason).await.map(Flow::Stop);
        }
        let mut next = self.next_revision(&current);
        let now = instant::format(instant::now());
        next.job.transaction_time.get_or_insert(now);
        let next_run = next.run.get_or_insert_default();
        next_run.attempts = run.attempts + 1;
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

    async fn complete(&self, current: &StoredJob) -> Result<RunOutcome, StoreError> {
        let reached = self.store.data_version().await?;
        let applied = current
            .run
            .as_ref()
            .map(|run| run.applied.as_slice())
            .unwrap_or_default();
        let output = completion_output(reached, applied);
        self.finish(current, JobStatus::Completed, output, RunOutcome::Completed)
            .await
    }

    async fn give_up(&self, current: &StoredJob, reason: String) -> Result<RunOutcome, StoreError> {
        tracing::error!(job = %current.job.id, %reason, "job failed");
        let outcome = OperationOutcome::error(IssueCode::Exception, reason);
        let output = Parameters::new(vec![Parameter::resource(
            "outcome",
            serde_json::to_value(outcome).expect("an OperationOutcome serializes"),
        )]);
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
        let next = current.finished(status, output, instant::now(), self.store.retention());
        if self.store.save(&current.job.meta.version_id, &next).await? {
            Ok(outcome)
        } else {
            self.lost_write(&current.job.id).await
        }
    }

    /// Lets go of the job so the next run need not wait for the lease to expire.
    async fn release(&self, current: &StoredJob, error: Option<String>) -> Result<(), StoreError> {
        let mut next = self.next_revision(current);
        if let Some(run) = &mut next.run {
            run.lease = None;
            run.last_error = error;
        }
        // Losing this race is fine: whoever wrote the job has it now.
        self.store
            .save(&current.job.meta.version_id, &next)
            .await
            .map(drop)
    }

    /// A copy of the job for the next write: new version, lease renewed.
    fn next_revision(&self, current: &StoredJob) -> StoredJob {
        let now = instant::now();
        let mut next = current.revised(now);
        next.run.get_or_insert_default().lease = Some(Lease {
            owner: self.owner.clone(),
            expires_at_ms: millis(now + self.settings.lease),
        });
        next
    }

    async fn unchanged(&self, current: &StoredJob) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get(&current.job.id)
            .await?
            .is_some_and(|now| now.job.meta.version_id == current.job.meta.version_id))
    }

    /// Why a conditional write lost: a cancel, or another worker took over.
    async fn lost_write(&self, id: &JobId) -> Result<RunOutcome, StoreError> {
        let status = self.store.get(id).await?.map(|stored| stored.job.status);
        if status == Some(JobStatus::Cancelled) {
            tracing::info!(job = %id, "cancelled; stopped at the checkpoint");
            Ok(RunOutcome::Cancelled)
        } else {
            Ok(RunOutcome::NotRunnable)
        }
    }
}

/// Whether a run goes on, with the job as last written, or stops.
enum Flow {
    Continue(Box<StoredJob>),
    Stop(RunOutcome),
}

/// `output` of a completed data migration: the version reached and one part per
/// migration applied.
fn completion_output(reached: u32, applied: &[MigrationReport]) -> Parameters {
    let mut parameter = vec![Parameter::integer("dataVersion", reached.into())];
    parameter.extend(applied.iter().map(|report| Parameter {
        name: "migration".to_owned(),
        part: vec![
            Parameter::integer("version", report.version.into()),
            Parameter::string("name", &report.name),
            Parameter::integer("itemsScanned", saturating(report.items_scanned)),
            Parameter::integer("itemsChanged", saturating(report.items_changed)),
            Parameter::integer("durationMs", saturating(report.duration_ms)),
        ],
        resource: None,
        value: serde_json::Map::new(),
    }));
    Parameters::new(parameter)
}

fn saturating(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The wall-clock deadline of a Lambda invocation as an [`Instant`].
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = u64::try_from(millis(OffsetDateTime::now_utc())).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
