//! [`JobStore`] and the runner's stores ([`RunStore`]) on DynamoDB, one concern a file: the
//! client, what its errors mean, the table's schema and provisioning, items, single-item
//! reads and writes, searches, kick-off bookkeeping, segments, budgets and stream records.

mod budget;
mod client;
mod errors;
pub(crate) mod item;
mod job_items;
mod kickoff;
mod provision;
mod scan;
pub(crate) mod schema;
mod search;
mod segments;
mod stream;
mod table;
mod write_id;

use std::time::Duration;

use aws_sdk_dynamodb::Client;

pub use client::{dynamodb_client, local_client};
pub use item::Item;
pub use provision::ensure_table;
pub use scan::{table_item_count, table_page};
pub use stream::{StreamWork, stream_work};

use super::{
    Change, Controlled, Delivery, JobRuns, JobStore, Kickoff, Reservation, SearchPage, SearchQuery,
    SegmentRuns, StoreError, Transient, WriteBudgets, change, segments_ended_by,
};
use crate::model::{AsyncJob, Clock, Control, JobId, JobType, SegmentKey, SegmentRun, StoredJob};
use errors::contention;
use table::Table;
use write_id::WriteId;

/// How often a control (pause, resume, cancel) that lost a race reads the job again before
/// the caller is told to retry.
const MAX_CONTROL_ATTEMPTS: usize = 8;

/// How long counting a search's total may take: well inside a function's timeout.
const COUNT_BUDGET: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct DynamoStore {
    table: Table,
    retention: Duration,
    count_budget: Duration,
    clock: Clock,
}

impl DynamoStore {
    /// `retention` is how long finished jobs stay readable.
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            table: Table {
                client,
                name: table.into(),
            },
            retention,
            count_budget: COUNT_BUDGET,
            clock: Clock::system(),
        }
    }

    /// The same store, reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same store, counting a search's total for at most `budget`.
    pub fn with_count_budget(mut self, budget: Duration) -> Self {
        self.count_budget = budget;
        self
    }

    pub fn client(&self) -> &Client {
        &self.table.client
    }

    pub fn table_name(&self) -> &str {
        &self.table.name
    }
}

impl JobStore for DynamoStore {
    fn clock(&self) -> &Clock {
        &self.clock
    }
    async fn get(&self, id: &JobId) -> Result<Option<StoredJob>, StoreError> {
        self.table.get(id, self.clock.now()).await
    }

    async fn start_migration(
        &self,
        job: AsyncJob,
        delivery: Option<&Delivery>,
    ) -> Result<Kickoff, StoreError> {
        self.table
            .start_migration(job, delivery, self.clock.now())
            .await
    }

    async fn control(&self, id: &JobId, control: &Control) -> Result<Controlled, StoreError> {
        // One mark for every try: after a try whose answers were all lost, the job read
        // again may be cancelled (or paused) by this control or by another's.
        let write = WriteId::new();
        for _ in 0..MAX_CONTROL_ATTEMPTS {
            let now = self.clock.now();
            let Some((current, mine)) = self.table.get_marked(id, now, &write).await? else {
                return Ok(Controlled::NotFound);
            };
            if mine {
                return Ok(Controlled::Done(current.job));
            }
            let next = match change(&current, control, now, self.retention) {
                Change::Write(next) => next,
                Change::Answer(answer) => return Ok(answer),
            };
            let ended = segments_ended_by(&next);
            let expected = &current.job.meta.version_id;
            match self
                .table
                .save_dropping(&write, expected, &next, &ended)
                .await
            {
                Ok(true) => return Ok(Controlled::Done(next.job)),
                Ok(false) => {}
                // The job's items were in another transaction (a runner's checkpoint that
                // applies a migration), or the answer was lost: read the job again.
                Err(StoreError::Unavailable {
                    kind: Transient::Conflict,
                    ..
                }) => {}
                Err(error) => return Err(error),
            }
        }
        Err(contention())
    }

    async fn data_version(&self) -> Result<u32, StoreError> {
        self.table.data_version().await
    }

    async fn running_migration(&self) -> Result<Option<AsyncJob>, StoreError> {
        self.table
            .running(JobType::DataMigration, self.clock.now())
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.table
            .search(query, self.clock.now(), self.count_budget)
            .await
    }
}

impl JobRuns for DynamoStore {
    async fn save(&self, expected_version: &str, next: &StoredJob) -> Result<bool, StoreError> {
        let ended = segments_ended_by(next);
        self.table
            .save_dropping(&WriteId::new(), expected_version, next, &ended)
            .await
    }
    async fn save_advancing(
        &self,
        expected_version: &str,
        next: &StoredJob,
        data_version: u32,
        done_segments: &[SegmentKey],
    ) -> Result<bool, StoreError> {
        self.table
            .save_advancing(expected_version, next, data_version, done_segments)
            .await
    }
    async fn accepted_jobs(&self, limit: usize) -> Result<Vec<StoredJob>, StoreError> {
        self.table.accepted_jobs(limit, self.clock.now()).await
    }
    async fn reap_expired(&self, limit: usize) -> Result<u64, StoreError> {
        self.table.reap_expired(limit, self.clock.now()).await
    }
    fn retention(&self) -> Duration {
        self.retention
    }
}

impl SegmentRuns for DynamoStore {
    async fn start_segments(
        &self,
        expected_version: &str,
        next: &StoredJob,
        segments: &[SegmentRun],
    ) -> Result<bool, StoreError> {
        self.table
            .start_segments(expected_version, next, segments)
            .await
    }
    async fn segments(&self, keys: &[SegmentKey]) -> Result<Vec<SegmentRun>, StoreError> {
        self.table.segments(keys).await
    }
    async fn save_segment(&self, next: &SegmentRun) -> Result<bool, StoreError> {
        self.table.save_segment(next).await
    }
}

impl WriteBudgets for DynamoStore {
    async fn reserve_writes(
        &self,
        migration: &SegmentKey,
        length_ms: i64,
    ) -> Result<Reservation, StoreError> {
        self.table
            .reserve_writes(migration, length_ms, &self.clock)
            .await
    }
    async fn return_writes(
        &self,
        migration: &SegmentKey,
        reservation: &Reservation,
        reserved_until_ms: i64,
        used_until_ms: i64,
    ) -> Result<(), StoreError> {
        self.table
            .return_writes(migration, reservation, reserved_until_ms, used_until_ms)
            .await
    }
}
