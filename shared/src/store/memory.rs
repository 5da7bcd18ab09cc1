//! [`JobStore`] in memory, with the same answers as the DynamoDB store: for handler CPU
//! benchmarks and unit tests that are about the handlers, not about storage.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Cancel, JobStore, Kickoff, SearchPage, SearchQuery, StoreError, StoredJob, page};
use crate::model::{AsyncJob, JobId, JobStatus, Meta, instant};

#[derive(Debug, Default)]
pub struct MemoryStore {
    jobs: Mutex<BTreeMap<JobId, StoredJob>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `stored` as it is, over any job with its id.
    pub fn put(&self, stored: StoredJob) {
        self.lock().insert(stored.job.id.clone(), stored);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<JobId, StoredJob>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn live(stored: &StoredJob) -> bool {
    stored.expires_at.is_none_or(|at| at > instant::now())
}

impl JobStore for MemoryStore {
    async fn get(&self, id: &JobId) -> Result<Option<StoredJob>, StoreError> {
        Ok(self.lock().get(id).filter(|stored| live(stored)).cloned())
    }

    async fn start_migration(&self, job: AsyncJob) -> Result<Kickoff, StoreError> {
        let mut jobs = self.lock();
        let same_type = |other: &AsyncJob| other.job_type == job.job_type;
        let live_jobs = || jobs.values().filter(|stored| live(stored)).map(|s| &s.job);
        if let Some(running) =
            live_jobs().find(|other| same_type(other) && other.status == JobStatus::Accepted)
        {
            return Ok(if running.data_version == job.data_version {
                Kickoff::Existing(running.clone())
            } else {
                Kickoff::Busy(running.clone())
            });
        }
        if let Some(done) = live_jobs().find(|other| {
            same_type(other)
                && other.data_version == job.data_version
                && other.status == JobStatus::Completed
        }) {
            return Ok(Kickoff::Existing(done.clone()));
        }
        jobs.insert(job.id.clone(), StoredJob::new(job.clone()));
        Ok(Kickoff::Created(job))
    }

    async fn cancel(&self, id: &JobId) -> Result<Cancel, StoreError> {
        let mut jobs = self.lock();
        let Some(stored) = jobs.get_mut(id).filter(|stored| live(stored)) else {
            return Ok(Cancel::NotFound);
        };
        match stored.job.status {
            JobStatus::Cancelled => Ok(Cancel::NotFound),
            JobStatus::Completed | JobStatus::Error => Ok(Cancel::Finished(stored.job.clone())),
            JobStatus::Accepted => {
                let now = instant::now();
                stored.job.meta = Meta {
                    version_id: stored.job.next_version_id(),
                    last_updated: instant::format(now),
                };
                stored.job.status = JobStatus::Cancelled;
                Ok(Cancel::Cancelled(stored.job.clone()))
            }
        }
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let jobs = self.lock();
        let found: Vec<&AsyncJob> = jobs
            .values()
            .filter(|stored| live(stored))
            .map(|stored| &stored.job)
            .filter(|job| query.matches(job))
            .collect();
        let total = query.total.then_some(found.len() as u64);
        let candidates = found
            .into_iter()
            .filter(|job| query.comes_after_cursor(job))
            .cloned()
            .collect();
        Ok(page(candidates, query, total))
    }
}
