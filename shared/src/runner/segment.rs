//! One segment's run: claimed with a lease of its own, migrated a page at a time with a
//! checkpoint in its own item, and its failed attempts counted there as a job's are.

use std::time::Instant;

use tokio::sync::watch;

use super::claim::Verdict;
use super::{RunOutcome, Runner, attempt_failure};
use crate::migration::Migration;
use crate::model::{SegmentKey, SegmentRun};
use crate::store::{RunStore, StoreError};

impl<S: RunStore> Runner<'_, S> {
    /// Runs one segment until it is done, fails, sees the job end, or the deadline nears;
    /// the next run resumes from its checkpoint.
    pub async fn run_segment(
        &self,
        key: &SegmentKey,
        deadline: Instant,
    ) -> Result<RunOutcome, StoreError> {
        // Nobody asks this run to stop; the sender is kept, so it never seems to.
        let (_never, stop) = watch::channel(false);
        self.run_segment_until(key, deadline, &stop).await
    }

    /// [`Self::run_segment`], which also stops once `stop` is set: its page in flight is cut
    /// short, and the segment let go.
    /// Whatever fails once the segment is claimed (DynamoDB throttling included) is recorded
    /// as its failed attempt, and its lease let go.
    pub(super) async fn run_segment_until(
        &self,
        key: &SegmentKey,
        deadline: Instant,
        stop: &watch::Receiver<bool>,
    ) -> Result<RunOutcome, StoreError> {
        // Looked up before the claim: a worker without the migration takes no lease.
        let Some(migration) = self.registry.get(key.version) else {
            tracing::warn!(job = %key.job_id, %key, "left alone: this worker lacks its migration");
            return Ok(RunOutcome::NotRunnable);
        };
        // Nor does a segment of a job that is paused or no longer runs. A read that fails
        // here is read again once the segment is claimed, where its failure is recorded as
        // the segment's attempt, throttling and its back-off included.
        if let Ok(Some(outcome)) = self.stopped_by_job(&key.job_id).await {
            return Ok(outcome);
        }
        let Some(mut held) = self.claim_segment(key).await? else {
            return Ok(RunOutcome::NotRunnable);
        };
        if held.gave_up.is_some() {
            return Ok(RunOutcome::GaveUp);
        }
        match self
            .segment_pages(&mut held, migration, deadline, stop)
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(error) => {
                let doing = format!(
                    "migration {} ({}){} after {} items",
                    key.version,
                    migration.name(),
                    which_part(key),
                    held.items_scanned
                );
                Ok(self.segment_failed(&held, &doing, error).await)
            }
        }
    }

    /// Migrates the held segment a page at a time, each with its checkpoint; `held` follows
    /// each write of the segment that landed.
    async fn segment_pages(
        &self,
        held: &mut SegmentRun,
        migration: &dyn Migration,
        deadline: Instant,
        stop: &watch::Receiver<bool>,
    ) -> Result<RunOutcome, StoreError> {
        loop {
            let near_deadline = Instant::now() + self.settings.stop_before_deadline >= deadline;
            if near_deadline || *stop.borrow() {
                return self.yield_segment(held).await;
            }
            // The segment's checkpoint is where it sees the job paused, cancelled or ended.
            if let Some(outcome) = self.stopped_by_job(&held.key.job_id).await? {
                // A lease that could not be let go runs out; a pause is no failed attempt,
                // and the next claim after a resume counts none for it (the job holds it).
                if outcome == RunOutcome::Paused
                    && let Err(error) = self.let_go_of_segment(held).await
                {
                    tracing::warn!(job = %held.key.job_id, %error, "could not let go of a paused segment");
                }
                return Ok(outcome);
            }
            if let Some(outcome) = self.segment_page(held, migration, deadline, stop).await? {
                return Ok(outcome);
            }
            if held.done {
                return Ok(RunOutcome::Completed);
            }
        }
    }

    /// Lets go of the segment; the next run resumes from its checkpoint.
    async fn yield_segment(&self, held: &SegmentRun) -> Result<RunOutcome, StoreError> {
        self.let_go_of_segment(held).await?;
        Ok(RunOutcome::Yielded)
    }

    /// Lets go of the segment if it is as `claimed` left it and leased to this worker.
    async fn release_segment_if_mine(&self, claimed: &SegmentRun) -> Result<(), StoreError> {
        let now = self
            .store
            .segments(std::slice::from_ref(&claimed.key))
            .await?;
        if let Some(now) = now
            .into_iter()
            .find(|now| now.revision == claimed.revision && now.attempts.is_held_by(&self.owner))
        {
            self.let_go_of_segment(&now).await?;
        }
        Ok(())
    }

    async fn let_go_of_segment(&self, held: &SegmentRun) -> Result<(), StoreError> {
        let mut next = held.revised();
        next.attempts.lease = None;
        self.letting_go(|| self.store.save_segment(&next))
            .await
            .map(drop)
    }

    /// Migrates the segment's next page and checkpoints it; `Some` when that ends the run
    /// (a lost lease, the page cut short at the deadline). A step that fails is an error
    /// like any other.
    async fn segment_page(
        &self,
        held: &mut SegmentRun,
        migration: &dyn Migration,
        deadline: Instant,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<RunOutcome>, StoreError> {
        let started = Instant::now();
        let context = self.page_context(&held.key);
        let cursor = held.cursor.clone();
        let step = migration.step(&context, cursor.as_deref());
        let step = async {
            let mut stop = stop.clone();
            tokio::select! {
                step = self.until_deadline(step, deadline) => step,
                // Asked to stop: the page is cut short as at the deadline.
                Ok(_) = stop.wait_for(|stop| *stop) => None,
            }
        };
        let stepped = self.holding_lease(step, held).await;
        context.budget.settle().await;
        let step = match stepped? {
            Some(Some(step)) => step?,
            Some(None) => return self.yield_segment(held).await.map(Some),
            None => return self.lost_write(&held.key.job_id).await.map(Some),
        };
        let mut next = self.leased(held);
        next.items_scanned += step.items_scanned;
        next.items_changed += step.items_changed;
        next.items_skipped += step.items_skipped;
        next.duration_ms += u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        next.done = step.next.is_none();
        next.cursor = step.next;
        next.attempts.succeeded();
        if next.done {
            next.attempts.lease = None;
        }
        if !self.store.save_segment(&next).await? {
            // Another worker took the segment, or the job ended and deleted it.
            return self.lost_write(&held.key.job_id).await.map(Some);
        }
        *held = next;
        Ok(None)
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

    /// Runs `work` while renewing the segment's lease every third of it: a page that runs
    /// long never lets the lease run out under a live worker. `held` follows each renewal
    /// that landed. A renewal that loses its race (a takeover, the job ended) drops the
    /// work: `None`; one that fails drops it with its error.
    async fn holding_lease<T>(
        &self,
        work: impl Future<Output = T>,
        held: &mut SegmentRun,
    ) -> Result<Option<T>, StoreError> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return Ok(Some(result)),
                () = tokio::time::sleep(self.settings.lease / 3) => {
                    let renewed = self.leased(held);
                    if !self.store.save_segment(&renewed).await? {
                        return Ok(None);
                    }
                    *held = renewed;
                }
            }
        }
    }

    /// Takes the segment's lease, as [`Runner::claim`] takes a job's: `None` when it is
    /// finished, held by another worker, or waiting after a failure. A lease that ran out
    /// is a run that died, and counts as a failed attempt; after too many, the segment is
    /// given up (the job's runner then gives the job up with it).
    async fn claim_segment(&self, key: &SegmentKey) -> Result<Option<SegmentRun>, StoreError> {
        let Some(current) = self.store.segments(std::slice::from_ref(key)).await?.pop() else {
            return Ok(None);
        };
        if current.is_finished() {
            return Ok(None);
        }
        let mut next = self.leased(&current);
        match self.verdict(&current.attempts, self.now()) {
            Verdict::Leave => return Ok(None),
            Verdict::GiveUp(reason) => {
                next.attempts.lease = None;
                // Named when there are others: the job's reason says which one gave up.
                next.gave_up = Some(if key.total > 1 {
                    format!("{key}: {reason}")
                } else {
                    reason
                });
            }
            Verdict::Take { failures } => next.attempts.failures = failures,
        }
        match self.store.save_segment(&next).await {
            Ok(landed) => Ok(landed.then_some(next)),
            Err(error) => {
                // The claim may have landed with every answer to it lost: let go of it if
                // the segment is this worker's now. Another worker claiming from the same
                // revision writes the same revision, so the revision alone cannot tell.
                if next.attempts.lease.is_some()
                    && let Err(release) = self.release_segment_if_mine(&next).await
                {
                    tracing::warn!(job = %key.job_id, %key, error = %release, "could not let go of a claim");
                }
                Err(error)
            }
        }
    }

    /// The segment's next revision, leased to this worker.
    fn leased(&self, current: &SegmentRun) -> SegmentRun {
        let mut next = current.revised();
        next.attempts.lease = Some(self.lease());
        next
    }

    /// A segment's attempt failed: it lets go of its lease, counts the failure as a job
    /// does ([`Runner::failed`]) and waits before its next attempt.
    async fn segment_failed(
        &self,
        current: &SegmentRun,
        doing: &str,
        error: StoreError,
    ) -> RunOutcome {
        let reason = attempt_failure(doing, &error);
        tracing::warn!(job = %current.key.job_id, %error, %reason, "segment attempt failed");
        let record = |held: SegmentRun| {
            let mut next = held.revised();
            self.record_failure(&mut next.attempts, &error, reason.clone());
            async move { self.store.save_segment(&next).await }
        };
        let mine = || async {
            let now = self
                .store
                .segments(std::slice::from_ref(&current.key))
                .await?;
            Ok(now
                .into_iter()
                .find(|now| !now.is_finished() && now.attempts.is_held_by(&self.owner)))
        };
        if let Err(error) = self.letting_go_of(current.clone(), record, mine).await {
            tracing::warn!(job = %current.key.job_id, %error, "could not record the failure");
        }
        RunOutcome::Failed(reason)
    }
}

/// Which part of its migration a segment is, for its errors: nothing when it is the only one.
fn which_part(key: &SegmentKey) -> String {
    if key.total > 1 {
        format!(", {key},")
    } else {
        String::new()
    }
}
