//! [`JobStore`] and [`RunStore`] in memory, following the same rules as the DynamoDB store:
//! for handler CPU benchmarks and unit tests of the handlers and the runner. Store behaviour
//! itself is tested against the engine.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    Change, Controlled, Delivery, JobRuns, JobStore, Kickoff, Reservation, SearchPage, SearchQuery,
    SegmentRuns, StoreError, WriteBudgets, answer_without_writing, change, segments_ended_by,
};
use crate::model::{
    AsyncJob, Clock, Control, JobId, JobStatus, JobType, SegmentKey, SegmentRun, StoredJob,
};

#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    retention: Duration,
    clock: Clock,
}

#[derive(Debug, Default)]
struct State {
    jobs: BTreeMap<JobId, StoredJob>,
    data_version: u32,
    deliveries: BTreeMap<Delivery, JobId>,
    segments: BTreeMap<(JobId, u32, u32), SegmentRun>,
    /// Where each migration's next window of writes starts, in epoch ms, and the mark of
    /// the reservation that put it there.
    budgets: BTreeMap<(JobId, u32), (i64, String)>,
}

impl MemoryStore {
    /// `retention` is how long finished jobs stay readable.
    pub fn new(retention: Duration) -> Self {
        Self {
            state: Mutex::default(),
            retention,
            clock: Clock::system(),
        }
    }

    /// Writes `stored` as it is, over any job with its id.
    pub fn put(&self, stored: StoredJob) {
        self.lock().jobs.insert(stored.job.id.clone(), stored);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn live_jobs(&self, now: OffsetDateTime) -> impl Iterator<Item = &StoredJob> {
        self.jobs
            .values()
            .filter(move |stored| stored.is_live_at(now))
    }

    fn live(&self, id: &JobId, now: OffsetDateTime) -> Option<&StoredJob> {
        self.jobs.get(id).filter(|stored| stored.is_live_at(now))
    }

    /// Writes `next` over its job and deletes the segments of `dropped`.
    fn write(&mut self, next: &StoredJob, dropped: &[SegmentKey]) {
        self.jobs.insert(next.job.id.clone(), next.clone());
        for key in dropped {
            self.segments.remove(&slot(key));
            self.budgets.remove(&(key.job_id.clone(), key.version));
        }
    }

    /// Whether the job is still at `expected_version`, as a conditional write checks.
    fn is_at(&self, id: &JobId, expected_version: &str) -> bool {
        self.jobs
            .get(id)
            .is_some_and(|stored| stored.job.meta.version_id == expected_version)
    }
}

/// Where a segment is kept.
fn slot(key: &SegmentKey) -> (JobId, u32, u32) {
    (key.job_id.clone(), key.version, key.segment)
}

impl JobStore for MemoryStore {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn get(&self, id: &JobId) -> Result<Option<StoredJob>, StoreError> {
        Ok(self.lock().live(id, self.clock.now()).cloned())
    }

    async fn start_migration(
        &self,
        job: AsyncJob,
        delivery: Option<&Delivery>,
    ) -> Result<Kickoff, StoreError> {
        let mut state = self.lock();
        if let Some(started) = delivery.and_then(|delivery| state.deliveries.get(delivery)) {
            return Ok(match state.live(started, self.clock.now()) {
                Some(stored) => Kickoff::Existing(stored.job.clone()),
                None => Kickoff::Delivered(started.clone()),
            });
        }
        let same_type = |other: &&StoredJob| other.job.job_type == job.job_type;
        let running = state
            .live_jobs(self.clock.now())
            .filter(same_type)
            .find(|other| other.job.status == JobStatus::Accepted);
        // The newest job for the same version, as the store's version pointer names it.
        let same_version = state
            .live_jobs(self.clock.now())
            .filter(same_type)
            .filter(|other| other.job.data_version == job.data_version)
            .max_by(|a, b| a.job.id.cmp(&b.job.id));
        let answer = answer_without_writing(
            running.map(|stored| stored.job.clone()),
            same_version.map(|stored| stored.job.clone()),
        );
        let answer = match answer {
            None => {
                state
                    .jobs
                    .insert(job.id.clone(), StoredJob::new(job.clone()));
                Kickoff::Created(job)
            }
            Some(Kickoff::Existing(existing)) => Kickoff::Existing(existing),
            Some(refused) => return Ok(refused),
        };
        if let (Some(delivery), Kickoff::Created(started) | Kickoff::Existing(started)) =
            (delivery, &answer)
        {
            state
                .deliveries
                .insert(delivery.clone(), started.id.clone());
        }
        Ok(answer)
    }

    async fn control(&self, id: &JobId, control: &Control) -> Result<Controlled, StoreError> {
        let mut state = self.lock();
        let Some(current) = state.live(id, self.clock.now()) else {
            return Ok(Controlled::NotFound);
        };
        match change(current, control, self.clock.now(), self.retention) {
            Change::Write(next) => {
                state.write(&next, &segments_ended_by(&next));
                Ok(Controlled::Done(next.job))
            }
            Change::Answer(answer) => Ok(answer),
        }
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let state = self.lock();
        let found = state
            .live_jobs(self.clock.now())
            .map(|stored| stored.job.clone())
            .collect();
        Ok(query.page_of_found(found))
    }

    async fn data_version(&self) -> Result<u32, StoreError> {
        Ok(self.lock().data_version)
    }

    async fn running_migration(&self) -> Result<Option<AsyncJob>, StoreError> {
        Ok(self
            .lock()
            .live_jobs(self.clock.now())
            .find(|stored| {
                stored.job.status == JobStatus::Accepted
                    && stored.job.job_type == Some(JobType::DataMigration)
            })
            .map(|stored| stored.job.clone()))
    }
}

impl JobRuns for MemoryStore {
    async fn save(&self, expected_version: &str, next: &StoredJob) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.is_at(&next.job.id, expected_version) {
            return Ok(false);
        }
        state.write(next, &segments_ended_by(next));
        Ok(true)
    }
    async fn save_advancing(
        &self,
        expected_version: &str,
        next: &StoredJob,
        data_version: u32,
        done_segments: &[SegmentKey],
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.is_at(&next.job.id, expected_version) {
            return Ok(false);
        }
        // The conditions in the DynamoDB transaction's order: the job, the data version (at
        // `data_version` or beyond, the job is saved alone), then the segments.
        if state.data_version < data_version {
            if let Some(key) = done_segments
                .iter()
                .find(|key| !state.segments.get(&slot(key)).is_some_and(|run| run.done))
            {
                return Err(StoreError::Failed(format!(
                    "{key} of the migration is not done"
                )));
            }
            state.data_version = data_version;
        }
        state.write(next, done_segments);
        Ok(true)
    }
    async fn accepted_jobs(&self, limit: usize) -> Result<Vec<StoredJob>, StoreError> {
        let state = self.lock();
        let mut accepted: Vec<StoredJob> = state
            .live_jobs(self.clock.now())
            .filter(|stored| stored.job.status == JobStatus::Accepted)
            .cloned()
            .collect();
        accepted.sort_by(|a, b| {
            (&a.job.request_time, &a.job.id).cmp(&(&b.job.request_time, &b.job.id))
        });
        accepted.truncate(limit);
        Ok(accepted)
    }
    async fn reap_expired(&self, _limit: usize) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let now = self.clock.now();
        let before = state.jobs.len();
        state.jobs.retain(|_, stored| stored.is_live_at(now));
        Ok((before - state.jobs.len()) as u64)
    }
    fn retention(&self) -> Duration {
        self.retention
    }
}

impl SegmentRuns for MemoryStore {
    async fn start_segments(
        &self,
        expected_version: &str,
        next: &StoredJob,
        segments: &[SegmentRun],
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.is_at(&next.job.id, expected_version) {
            return Ok(false);
        }
        if let Some(run) = segments
            .iter()
            .find(|run| state.segments.contains_key(&slot(&run.key)))
        {
            return Err(StoreError::Failed(format!("{} exists already", run.key)));
        }
        state.write(next, &[]);
        for run in segments {
            state.segments.insert(slot(&run.key), run.clone());
        }
        Ok(true)
    }
    async fn segments(&self, keys: &[SegmentKey]) -> Result<Vec<SegmentRun>, StoreError> {
        let state = self.lock();
        Ok(keys
            .iter()
            .filter_map(|key| state.segments.get(&slot(key)).cloned())
            .collect())
    }
    async fn save_segment(&self, next: &SegmentRun) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.segments.get_mut(&slot(&next.key)) {
            Some(run) if run.revision + 1 == next.revision => {
                *run = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl WriteBudgets for MemoryStore {
    async fn reserve_writes(
        &self,
        migration: &SegmentKey,
        length_ms: i64,
    ) -> Result<Reservation, StoreError> {
        let now_ms = self.clock.now_ms();
        let mut state = self.lock();
        if !state.segments.contains_key(&slot(migration)) {
            return Err(StoreError::Failed(format!("{migration} is gone")));
        }
        let mark = uuid::Uuid::now_v7().to_string();
        let budget = (migration.job_id.clone(), migration.version);
        let next = state.budgets.get(&budget).map_or(now_ms, |(next, _)| *next);
        let start_ms = next.max(now_ms);
        state
            .budgets
            .insert(budget, (start_ms + length_ms, mark.clone()));
        Ok(Reservation { start_ms, mark })
    }
    async fn return_writes(
        &self,
        migration: &SegmentKey,
        reservation: &Reservation,
        reserved_until_ms: i64,
        used_until_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let budget = (migration.job_id.clone(), migration.version);
        if let Some((next, mark)) = state.budgets.get_mut(&budget)
            && *next == reserved_until_ms
            && *mark == reservation.mark
        {
            *next = used_until_ms;
        }
        Ok(())
    }
}
