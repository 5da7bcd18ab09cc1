//! One page of a migration: the step, the lease renewed while it runs, and the checkpoint
//! that records it.

use std::time::Instant;

use super::output::running_output;
use super::{Flow, RunOutcome, Runner};
use crate::migration::{Migration, Step};
use crate::model::{MigrationProgress, MigrationReport, SegmentKey, StoredJob};
use crate::store::{RunStore, StoreError};

/// A step's end: its result and the job as last written (the renewals change it), the step
/// cut short at the deadline, or the run's end when a renewal lost its race.
enum Stepped {
    Done(Box<StoredJob>, Result<Step, StoreError>),
    Cut(Box<StoredJob>),
    Stopped(RunOutcome),
}

impl<S: RunStore> Runner<'_, S> {
    /// Migrates the next page of the job's plan and checkpoints it, or completes the job when
    /// the plan is done.
    pub(super) async fn advance(
        &self,
        current: &StoredJob,
        deadline: Instant,
    ) -> Result<Flow, StoreError> {
        let run = current.run.clone().unwrap_or_default();
        let plan = run.plan.clone().unwrap_or_default();
        let Some(&version) = plan.get(run.applied.len()) else {
            return self.complete(current).await.map(Flow::Stop);
        };
        let Some(migration) = self.registry.get(version) else {
            // The claim checks the plan against the registry; nothing to do here but stop.
            return Ok(Flow::Stop(RunOutcome::NotRunnable));
        };
        let progress = match run.current.filter(|progress| progress.version == version) {
            Some(progress) => progress,
            None => self.starting(migration).await,
        };
        if let Some(total) = progress.segments {
            return self
                .drive_segments(current, migration, progress, total, deadline)
                .await;
        }
        let fresh = progress.cursor.is_none() && progress.items_scanned == 0;
        let total = self.settings.segments_for(progress.estimated_items);
        if fresh && migration.segmentable() && total > 1 {
            return self.fan_out(current, progress, total).await;
        }
        self.migrate_page(current, migration, progress, deadline)
            .await
    }

    /// The progress of `migration` before its first page.
    async fn starting(&self, migration: &dyn Migration) -> MigrationProgress {
        MigrationProgress::starting(migration.version(), self.estimate(migration).await)
    }

    /// Migrates the page of `migration` that `progress` says comes next, in one scan of the
    /// whole table, and checkpoints it.
    async fn migrate_page(
        &self,
        current: &StoredJob,
        migration: &dyn Migration,
        mut progress: MigrationProgress,
        deadline: Instant,
    ) -> Result<Flow, StoreError> {
        let version = progress.version;
        let started = Instant::now();
        let (held, step) = match self
            .step_holding_lease(current, migration, &progress, deadline)
            .await?
        {
            Stepped::Done(held, step) => (held, step),
            Stepped::Cut(held) => {
                self.release(&held).await?;
                return Ok(Flow::Stop(RunOutcome::Yielded));
            }
            Stepped::Stopped(outcome) => return Ok(Flow::Stop(outcome)),
        };
        let step = match step {
            Ok(step) => step,
            Err(error) => {
                let doing = format!(
                    "migration {version} ({}) after {} items",
                    migration.name(),
                    progress.items_scanned
                );
                return self.failed(&held, &doing, error).await.map(Flow::Stop);
            }
        };
        let recording = format!(
            "migration {version} ({}) recording its progress at item {}",
            migration.name(),
            progress.items_scanned + step.items_scanned
        );
        progress.items_scanned += step.items_scanned;
        progress.items_changed += step.items_changed;
        progress.items_skipped += step.items_skipped;
        progress.duration_ms += u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.cursor = step.next;
        let applied = progress.cursor.is_none().then_some(&[][..]);
        match self
            .checkpoint(&held, progress, migration.name(), applied)
            .await
        {
            Err(error) => self.failed(&held, &recording, error).await.map(Flow::Stop),
            flow => flow,
        }
    }

    /// How many items `migration` will scan, if it can tell; progress goes without an
    /// estimate when it cannot.
    async fn estimate(&self, migration: &dyn Migration) -> Option<u64> {
        match migration.estimate(&self.context).await {
            Ok(estimate) => estimate,
            Err(error) => {
                tracing::warn!(%error, migration = migration.name(), "no estimate of the items");
                None
            }
        }
    }

    /// Runs one step while renewing the job's lease (see [`Runner::holding_lease`]), cut
    /// short at the deadline. A renewal that failed fails the step, against the job as last
    /// written.
    async fn step_holding_lease(
        &self,
        current: &StoredJob,
        migration: &dyn Migration,
        progress: &MigrationProgress,
        deadline: Instant,
    ) -> Result<Stepped, StoreError> {
        let step = migration.step(&self.context, progress.cursor.as_deref());
        let step = self.until_deadline(step, deadline);
        let renew = |held: StoredJob| async move {
            let renewed = self.next_revision(&held);
            let saved = self.store.save(&held.job.meta.version_id, &renewed).await?;
            Ok(saved.then_some(renewed))
        };
        let mut held = current.clone();
        let step = match self.holding_lease(step, &mut held, renew).await {
            Ok(Some(Some(step))) => step,
            Ok(Some(None)) => return Ok(Stepped::Cut(Box::new(held))),
            Ok(None) => return Ok(Stepped::Stopped(self.lost_write(&held.job.id).await?)),
            Err(error) => Err(error),
        };
        Ok(Stepped::Done(Box::new(held), step))
    }

    /// `work`, dropped once less than the stop margin is left before `deadline`: `None`
    /// then. Lambda would kill a page that outlives the deadline, leaving its leases to run
    /// out; a step is idempotent, so the next run does a page cut short again.
    pub(super) async fn until_deadline<T>(
        &self,
        work: impl Future<Output = T>,
        deadline: Instant,
    ) -> Option<T> {
        let stop_at = deadline
            .checked_sub(self.settings.stop_before_deadline)
            .unwrap_or(deadline);
        tokio::time::timeout_at(stop_at.into(), work).await.ok()
    }

    /// Runs `work` while renewing a lease on `held` every third of it: work that runs long
    /// never lets the lease run out under a live worker. `held` follows each renewal that
    /// landed. A renewal that loses its race (a cancel, a takeover) drops the work: `None`;
    /// one that fails drops it with its error.
    pub(super) async fn holding_lease<T, H, R>(
        &self,
        work: impl Future<Output = T>,
        held: &mut H,
        renew: impl Fn(H) -> R,
    ) -> Result<Option<T>, StoreError>
    where
        H: Clone,
        R: Future<Output = Result<Option<H>, StoreError>>,
    {
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return Ok(Some(result)),
                () = tokio::time::sleep(self.settings.lease / 3) => {
                    match renew(held.clone()).await? {
                        Some(renewed) => *held = renewed,
                        None => return Ok(None),
                    }
                }
            }
        }
    }

    /// Records `progress`; once its migration is `applied` (with every segment of it done),
    /// records it as applied and moves the data version up in the same write, on the
    /// condition that those segments are done. A checkpoint ends any run of failures.
    pub(super) async fn checkpoint(
        &self,
        current: &StoredJob,
        progress: MigrationProgress,
        name: &str,
        applied: Option<&[SegmentKey]>,
    ) -> Result<Flow, StoreError> {
        let mut next = self.next_revision(current);
        let next_run = next.run.get_or_insert_default();
        next_run.attempts.succeeded();
        let version = progress.version;
        if applied.is_some() {
            next_run.current = None;
            next_run.applied.push(MigrationReport {
                version,
                name: name.to_owned(),
                items_scanned: progress.items_scanned,
                items_changed: progress.items_changed,
                items_skipped: progress.items_skipped,
                duration_ms: progress.duration_ms,
            });
        } else {
            next_run.current = Some(progress);
        }
        next.job.output = Some(running_output(next_run));
        let expected = &current.job.meta.version_id;
        let written = match applied {
            Some(done_segments) => {
                self.store
                    .save_advancing(expected, &next, version, done_segments)
                    .await?
            }
            None => self.store.save(expected, &next).await?,
        };
        if written {
            Ok(Flow::Continue(Box::new(next)))
        } else {
            self.lost_write(&current.job.id).await.map(Flow::Stop)
        }
    }
}
