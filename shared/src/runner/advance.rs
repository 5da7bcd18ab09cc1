//! A job's way through its plan: the next migration started as segments or driven on, the
//! job completed once the plan is done, and the checkpoint that records each step of it.

use std::time::Instant;

use super::{Flow, RunOutcome, Runner};
use crate::migration::Migration;
use crate::model::output::running_output;
use crate::model::{MigrationProgress, MigrationReport, SegmentKey, StoredJob};
use crate::store::{RunStore, StoreError};

impl<S: RunStore> Runner<'_, S> {
    /// Starts the next migration of the job's plan as segments, or drives its segments on,
    /// or completes the job when the plan is done.
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
        match progress.segments {
            Some(total) => {
                self.drive_segments(current, migration, progress, total, deadline)
                    .await
            }
            None => {
                let total = self.segments_of(migration, &progress);
                self.fan_out(current, progress, total).await
            }
        }
    }

    /// How many segments `migration` runs in: one unless it can be split, and one for a
    /// migration a release before this one began as a single scan of the whole table, which
    /// goes on from its cursor as that one segment.
    fn segments_of(&self, migration: &dyn Migration, progress: &MigrationProgress) -> u32 {
        if migration.segmentable() && progress.cursor.is_none() {
            self.settings.segments_for(progress.estimated_items)
        } else {
            1
        }
    }

    /// The progress of `migration` before its first page.
    async fn starting(&self, migration: &dyn Migration) -> MigrationProgress {
        MigrationProgress::starting(migration.version(), self.estimate(migration).await)
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
