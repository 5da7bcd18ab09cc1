//! Migrations that run as parallel Scan segments.
//!
//! The job's runner starts the segments: it writes one item per segment together with the
//! job's checkpoint, in one transaction. From then on each segment is run on its own, by
//! whichever worker claims its item first (the job's runner, up to
//! [`RunSettings::segments_at_once`](super::RunSettings) at a time, or any other worker the
//! stream or the sweeper started), with its own lease and checkpoint in its own item; a
//! segment reads the job after each checkpoint, so it sees a cancel there. Meanwhile the
//! job's runner sums the segments into the job's progress. Once every segment is done, the
//! migration is recorded as applied, the data version moves up and the segment items are
//! deleted in one transaction, conditional on every segment item being done. A segment that
//! fails too often in a row is given up, and the job with it. A segment's own run is in
//! `segment.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{Flow, RunOutcome, Runner};
use crate::migration::Migration;
use crate::model::output::running_output;
use crate::model::{JobStatus, MigrationProgress, SegmentKey, SegmentRun, StoredJob};
use crate::store::{RunStore, StoreError};

/// Where the segments of a migration stand.
pub(super) enum Survey {
    /// Some are still to run: the job as last written, and the segments as read.
    Running(Box<StoredJob>, Vec<SegmentRun>),
    /// The migration is applied, or the job has ended.
    Ended(Flow),
}

/// How often the job's runner sums its segments into the job's progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

impl<S: RunStore> Runner<'_, S> {
    /// Starts the migration of `progress` as `total` segments. A migration a release before
    /// this one began as a single scan goes on as its one segment, from its cursor and with
    /// its counts.
    pub(super) async fn fan_out(
        &self,
        current: &StoredJob,
        progress: MigrationProgress,
        total: u32,
    ) -> Result<Flow, StoreError> {
        let mut segments: Vec<SegmentRun> =
            SegmentKey::all(&current.job.id, progress.version, total)
                .into_iter()
                .map(SegmentRun::new)
                .collect();
        if let (Some(cursor), [only]) = (&progress.cursor, segments.as_mut_slice()) {
            only.cursor = Some(cursor.clone());
            only.items_scanned = progress.items_scanned;
            only.items_changed = progress.items_changed;
            only.items_skipped = progress.items_skipped;
            only.duration_ms = progress.duration_ms;
        }
        let elapsed = i64::try_from(progress.duration_ms).unwrap_or(0);
        let progress = MigrationProgress {
            cursor: None,
            segments: Some(total),
            started_at_ms: Some(self.store.clock().now_ms() - elapsed),
            ..progress
        };
        let mut next = self.next_revision(current);
        let next_run = next.run.get_or_insert_default();
        next_run.current = Some(progress);
        next.job.output = Some(running_output(next_run));
        let expected = &current.job.meta.version_id;
        if self
            .store
            .start_segments(expected, &next, &segments)
            .await?
        {
            tracing::info!(job = %current.job.id, total, "migration split into segments");
            Ok(Flow::Continue(Box::new(next)))
        } else {
            self.lost_write(&current.job.id).await.map(Flow::Stop)
        }
    }

    /// Runs the segments of the job's current migration, as many at once as the settings
    /// allow, and records their sum as the job's progress every [`PROGRESS_INTERVAL`]; that
    /// write renews the job's lease and sees a cancel. Ends when the migration is applied,
    /// the job given up or cancelled, the deadline nears, or no segment is left that this
    /// worker may run now. A failure is recorded against the job as last written.
    pub(super) async fn drive_segments(
        &self,
        current: &StoredJob,
        migration: &dyn Migration,
        progress: MigrationProgress,
        total: u32,
        deadline: Instant,
    ) -> Result<Flow, StoreError> {
        let mut held = current.clone();
        match self
            .drive(&mut held, migration, &progress, total, deadline)
            .await
        {
            Ok(flow) => Ok(flow),
            Err(error) => {
                let doing = format!("migration {} ({})", progress.version, migration.name());
                self.failed(&held, &doing, error).await.map(Flow::Stop)
            }
        }
    }

    /// [`Self::drive_segments`]' loop; `held` follows each write of the job that landed.
    async fn drive(
        &self,
        held: &mut StoredJob,
        migration: &dyn Migration,
        progress: &MigrationProgress,
        total: u32,
        deadline: Instant,
    ) -> Result<Flow, StoreError> {
        let keys = SegmentKey::all(&held.job.id, progress.version, total);
        let tick = PROGRESS_INTERVAL.min(self.settings.lease / 3);
        let (ask_to_stop, stop) = watch::channel(false);
        let stop = &stop;
        let mut running = FuturesUnordered::new();
        let mut mine = HashSet::new();
        loop {
            let segments = match self.surveyed(held, migration, progress, &keys).await {
                Ok(segments) => segments,
                Err(end) => {
                    // The segments in flight cut their pages short and let go of their
                    // leases: dropped mid-page, each lease would run out and count as a
                    // worker that died.
                    ask_to_stop.send_replace(true);
                    drain(&mut running).await;
                    return end;
                }
            };
            if Instant::now() + self.settings.stop_before_deadline >= deadline {
                // Each segment lets go of its own lease at the deadline.
                drain(&mut running).await;
                return self.yield_job(held, migration, progress, &keys).await;
            }
            let free = self.settings.segments_at_once.saturating_sub(running.len());
            for key in startable(&segments, &mine, free, self.now()) {
                mine.insert(key.segment);
                running.push(async move {
                    let outcome = self.run_segment_until(&key, deadline, stop).await;
                    (key, outcome)
                });
            }
            if running.is_empty() {
                return self.let_go(held, &segments, &keys).await;
            }
            tokio::select! {
                Some((key, outcome)) = running.next() => {
                    mine.remove(&key.segment);
                    log_segment_run(&key, outcome);
                }
                () = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// [`Self::survey`], `held` following its write: the segments as read, or how the drive
    /// ends.
    async fn surveyed(
        &self,
        held: &mut StoredJob,
        migration: &dyn Migration,
        progress: &MigrationProgress,
        keys: &[SegmentKey],
    ) -> Result<Vec<SegmentRun>, Result<Flow, StoreError>> {
        match self.survey(held, migration, progress, keys).await {
            Ok(Survey::Running(next, segments)) => {
                *held = *next;
                Ok(segments)
            }
            Ok(Survey::Ended(flow)) => Err(Ok(flow)),
            Err(error) => Err(Err(error)),
        }
    }

    /// Reads the segments and records where they stand: their sum as the job's progress, or,
    /// once all are done, the migration as applied; a segment given up gives the job up.
    pub(super) async fn survey(
        &self,
        held: &StoredJob,
        migration: &dyn Migration,
        progress: &MigrationProgress,
        keys: &[SegmentKey],
    ) -> Result<Survey, StoreError> {
        let segments = self.store.segments(keys).await?;
        if segments.len() < keys.len() {
            // A job's final write deletes its segments: when the job changed since this
            // worker wrote it, it was cancelled or another worker took it on and ended it.
            let now = self.store.get(&held.job.id).await?;
            let version = |stored: &StoredJob| stored.job.meta.version_id.clone();
            if now.as_ref().map(version) != Some(version(held)) {
                let cancelled = now.is_some_and(|now| now.job.status == JobStatus::Cancelled);
                let outcome = if cancelled {
                    RunOutcome::Cancelled
                } else {
                    RunOutcome::NotRunnable
                };
                return Ok(Survey::Ended(Flow::Stop(outcome)));
            }
            return Err(StoreError::Failed(format!(
                "{} of its {} segments are missing",
                keys.len() - segments.len(),
                keys.len()
            )));
        }
        if let Some(reason) = segments.iter().find_map(|run| run.gave_up.clone()) {
            return Ok(Survey::Ended(Flow::Stop(self.give_up(held, reason).await?)));
        }
        let summed = summed(progress, &segments, self.store.clock().now_ms());
        let applied = segments.iter().all(|run| run.done).then_some(keys);
        match self
            .checkpoint(held, summed, migration.name(), applied)
            .await?
        {
            Flow::Continue(next) if applied.is_none() => Ok(Survey::Running(next, segments)),
            flow => Ok(Survey::Ended(flow)),
        }
    }
}

/// Up to `free` of `segments` a worker may start now, other than those it runs (`mine`).
fn startable(
    segments: &[SegmentRun],
    mine: &HashSet<u32>,
    free: usize,
    now: OffsetDateTime,
) -> Vec<SegmentKey> {
    segments
        .iter()
        .filter(|run| run.is_runnable_at(now) && !mine.contains(&run.key.segment))
        .take(free)
        .map(|run| run.key.clone())
        .collect()
}

/// Waits for every segment run in flight to end, and logs how each did.
async fn drain<F>(running: &mut FuturesUnordered<F>)
where
    F: Future<Output = (SegmentKey, Result<RunOutcome, StoreError>)>,
{
    while let Some((key, outcome)) = running.next().await {
        log_segment_run(&key, outcome);
    }
}

fn log_segment_run(key: &SegmentKey, outcome: Result<RunOutcome, StoreError>) {
    match outcome {
        Ok(outcome) => tracing::info!(job = %key.job_id, %key, ?outcome, "segment ran"),
        Err(error) => tracing::warn!(job = %key.job_id, %key, %error, "segment could not run"),
    }
}

/// The migration's progress at `now_ms` as the sum of its segments: items counted across
/// them, and the time since they were started, so the rate is the migration's whether its
/// segments ran side by side or in waves (the longest segment's time, before that was kept).
fn summed(progress: &MigrationProgress, segments: &[SegmentRun], now_ms: i64) -> MigrationProgress {
    let longest = segments.iter().map(|run| run.duration_ms).max();
    let elapsed = progress
        .started_at_ms
        .and_then(|started| u64::try_from(now_ms - started).ok());
    MigrationProgress {
        cursor: None,
        items_scanned: segments.iter().map(|run| run.items_scanned).sum(),
        items_changed: segments.iter().map(|run| run.items_changed).sum(),
        items_skipped: segments.iter().map(|run| run.items_skipped).sum(),
        duration_ms: elapsed.or(longest).unwrap_or(0),
        ..progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobId;

    #[test]
    fn segments_run_in_waves_take_the_migrations_time_not_the_longest_ones() {
        let keys = SegmentKey::all(&JobId::generate(), 1, 4);
        let segments: Vec<SegmentRun> = keys
            .into_iter()
            .map(|key| SegmentRun {
                items_scanned: 1000,
                duration_ms: 1000,
                ..SegmentRun::new(key)
            })
            .collect();
        // Two at a time: two waves of a second each, started 2 s before.
        let progress = MigrationProgress {
            segments: Some(4),
            started_at_ms: Some(10_000),
            ..MigrationProgress::starting(1, Some(8000))
        };
        let summed = summed(&progress, &segments, 12_000);
        assert_eq!((summed.items_scanned, summed.duration_ms), (4000, 2000));
        assert_eq!(summed.rate(), 2000);
        // Progress written before the start was kept: the longest segment's time.
        let older = MigrationProgress {
            started_at_ms: None,
            ..progress
        };
        assert_eq!(summed_at(&older, &segments), 1000);
    }

    fn summed_at(progress: &MigrationProgress, segments: &[SegmentRun]) -> u64 {
        summed(progress, segments, 12_000).duration_ms
    }
}
