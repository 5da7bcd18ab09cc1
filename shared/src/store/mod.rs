//! Where jobs live: the [`JobStore`] trait and its DynamoDB implementation.

pub mod dynamo;
pub mod memory;
pub mod record;
pub mod table;

use std::future::Future;

use time::OffsetDateTime;

pub use dynamo::{DynamoStore, dynamodb_client, local_client};
pub use memory::MemoryStore;

use crate::model::{AsyncJob, JobId, JobStatus, JobType, instant};
use crate::runner::state::RunState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached in time or is throttling: worth trying again.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

/// A job and what the store knows about it beyond the resource.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredJob {
    pub job: AsyncJob,
    /// When the store will delete the record (finished jobs only).
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
}

/// What a kick-off came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Kickoff {
    /// A new job was written.
    Created(AsyncJob),
    /// A job for the same request is accepted or completed already; nothing was written.
    Existing(AsyncJob),
    /// Another data migration is running; nothing was written.
    Busy(AsyncJob),
}

/// What a cancel came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Cancel {
    Cancelled(AsyncJob),
    /// Unknown, expired or cancelled already.
    NotFound,
    /// Completed or failed: there is nothing left to cancel.
    Finished(AsyncJob),
}

/// The order of search results, by `requestTime` then id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A place in a search's order: results continue after it. Clients see it only inside an
/// opaque cursor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(String);

impl Position {
    pub fn of(job: &AsyncJob) -> Self {
        Self(format!("{}#{}", job.request_time, job.id))
    }

    /// Accepts only what [`Position::of`] writes, so a cursor cannot smuggle anything into a
    /// query.
    pub fn parse(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('#')?;
        instant::parse(time)?;
        JobId::parse(id)?;
        Some(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A search, already validated. `None` means "any"; an empty list matches nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    pub ids: Option<Vec<JobId>>,
    pub types: Option<Vec<JobType>>,
    pub statuses: Option<Vec<JobStatus>>,
    pub count: usize,
    pub order: Order,
    pub after: Option<Position>,
    pub total: bool,
}

impl SearchQuery {
    /// Whether `job` matches the search's ids, types and statuses.
    fn matches(&self, job: &AsyncJob) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&job.id))
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&job.status))
            && self
                .types
                .as_ref()
                .is_none_or(|t| job.job_type.is_some_and(|jt| t.contains(&jt)))
    }

    /// Whether `job` lies after the cursor in the search's order.
    fn comes_after_cursor(&self, job: &AsyncJob) -> bool {
        match (&self.after, self.order) {
            (None, _) => true,
            (Some(after), Order::NewestFirst) => Position::of(job) < *after,
            (Some(after), Order::OldestFirst) => Position::of(job) > *after,
        }
    }
}

/// Orders the candidates and cuts the page. Given at least `count + 1` candidates in
/// every key range, whether another page exists is known without another read.
fn page(mut candidates: Vec<AsyncJob>, query: &SearchQuery, total: Option<u64>) -> SearchPage {
    candidates.sort_by_cached_key(Position::of);
    if query.order == Order::NewestFirst {
        candidates.reverse();
    }
    let next = (candidates.len() > query.count).then(|| Position::of(&candidates[query.count - 1]));
    candidates.truncate(query.count);
    SearchPage {
        jobs: candidates,
        next,
        total,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    pub jobs: Vec<AsyncJob>,
    /// Where the next page starts, when there is one.
    pub next: Option<Position>,
    /// The number of matches in all pages, when it was asked for.
    pub total: Option<u64>,
}

/// Job storage as the handlers need it. Every state change is a conditional write, so
/// concurrent callers never overwrite each other.
pub trait JobStore: Send + Sync {
    /// The job, strongly consistent; `None` when unknown or expired.
    fn get(&self, id: &JobId)
    -> impl Future<Output = Result<Option<StoredJob>, StoreError>> + Send;

    /// Writes `job` (a new `accepted` data migration) unless a job for the same data version
    /// is accepted or completed, or another data migration is accepted.
    fn start_migration(
        &self,
        job: AsyncJob,
    ) -> impl Future<Output = Result<Kickoff, StoreError>> + Send;

    /// Moves an `accepted` job to `cancelled`.
    fn cancel(&self, id: &JobId) -> impl Future<Output = Result<Cancel, StoreError>> + Send;

    /// One page of matching jobs; reads grow with the page, never with the table.
    fn search(
        &self,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<SearchPage, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_accept_only_their_own_shape() {
        let good = "2026-11-27T12:00:00.123Z#0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a";
        assert_eq!(Position::parse(good).unwrap().as_str(), good);
        for bad in [
            "",
            "#",
            "2026-11-27T12:00:00.123Z",
            "2026-11-27T12:00:00Z#abc",
            "2026-11-27T12:00:00.123Z#a/b",
            "2026-11-27T12:00:00.123Z#a#b",
        ] {
            assert!(Position::parse(bad).is_none(), "{bad:?}");
        }
    }
}
