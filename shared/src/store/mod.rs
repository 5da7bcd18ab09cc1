//! Where jobs live: [`JobStore`] for the handlers, [`RunStore`] for the runner, and their two
//! implementations: DynamoDB, and memory (for unit tests and CPU benchmarks). The rules a
//! kick-off and an operator's control (pause, resume, cancel) follow are written once here and both stores apply them.

pub(crate) mod dynamo;
mod job_items;
mod memory;
mod query;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

pub use dynamo::{
    DynamoStore, Item, StreamWork, dynamodb_client, ensure_table, local_client, stream_work,
    table_item_count, table_page,
};
pub use job_items::{JobItem, JobItemPage, JobItems, ScanSegment};
pub use memory::MemoryStore;
pub use query::{Order, Position, SearchPage, SearchQuery, Total};

use crate::model::{
    Action, AsyncJob, Clock, Control, JobId, JobStatus, SegmentKey, SegmentRun, StoredJob,
};

/// What went wrong with the store. `Display` is for logs: it carries the SDK's message,
/// which may name tables, roles or request ids. [`StoreError::summary`] is for clients and
/// a job's OperationOutcome.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Worth trying again: DynamoDB throttled, timed out, was out of reach or failed, or a
    /// transaction met a conflicting one.
    #[error("the job store is unavailable ({kind}): {detail}")]
    Unavailable { kind: Transient, detail: String },
    /// DynamoDB refused the request; the same request will be refused again.
    #[error("the job store refused a request ({code}): {detail}")]
    Refused { code: String, detail: String },
    /// A failure the service describes in its own words: an unreadable item, a cursor that
    /// is not one, a migration's own failure.
    #[error("{0}")]
    Failed(String),
}

/// Why the store is unavailable for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transient {
    Throttled,
    TimedOut,
    Unreachable,
    ServerError,
    /// A transaction met a conflicting write of the same items.
    Conflict,
    /// Every attempt of a read-then-write found the item changed by someone else.
    Contention,
}

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Throttled => "throttled",
            Self::TimedOut => "timed out",
            Self::Unreachable => "out of reach",
            Self::ServerError => "server error",
            Self::Conflict => "conflicting transaction",
            Self::Contention => "concurrent writes",
        })
    }
}

impl StoreError {
    pub fn unavailable(kind: Transient, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            kind,
            detail: detail.into(),
        }
    }

    /// What went wrong, in words for a client or a job's OperationOutcome: the kind of
    /// failure and DynamoDB's error code, never its message.
    pub fn summary(&self) -> String {
        match self {
            Self::Unavailable { kind, .. } => format!("the job store was unavailable ({kind})"),
            Self::Refused { code, .. } => format!("the job store refused a request ({code})"),
            Self::Failed(message) => message.clone(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// DynamoDB asked for less (a request or a transaction throttled), or other writers
    /// got to the same items first (a conflicting transaction, contention): a reason to
    /// slow down and try again, never to give up.
    pub fn is_pushback(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                kind: Transient::Throttled | Transient::Conflict | Transient::Contention,
                ..
            }
        )
    }
}

/// What a kick-off came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Kickoff {
    /// A new job was written.
    Created(AsyncJob),
    /// A job for the same request is accepted or completed already, or the same delivery
    /// started this job before; no job was written.
    Existing(AsyncJob),
    /// The same delivery started this job before, and the job is no longer stored.
    Delivered(JobId),
    /// Another data migration is running; nothing was written.
    Busy(AsyncJob),
}

/// One delivery of an event kick-off: its source and the id the source gave it (an SQS
/// message id, an EventBridge event id). A delivery starts at most one job, however often it
/// is delivered again, for [`DELIVERY_MEMORY`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivery(String);

/// How long a delivery is remembered: longer than SQS keeps a message (14 days at most) and
/// than EventBridge retries an event (24 hours).
pub const DELIVERY_MEMORY: Duration = Duration::from_secs(15 * 24 * 60 * 60);

impl Delivery {
    /// `None` for an id that cannot be one (empty, or over 256 characters).
    pub fn new(source: &str, id: &str) -> Option<Self> {
        (!id.is_empty() && id.len() <= 256).then(|| Self(format!("{source}:{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A window of a migration's shared write budget, as [`RunStore::reserve_writes`] gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Where the window starts, in epoch ms.
    pub start_ms: i64,
    /// The reservation's own mark: only it may hand back the window's end.
    pub mark: String,
}

/// What an operator's [`Control`] of a job came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Controlled {
    /// Written: the job as it is now.
    Done(AsyncJob),
    /// Nothing to write: the job is paused already, or runs already.
    Already(AsyncJob),
    /// Unknown or expired; or, for a cancel, cancelled already.
    NotFound,
    /// Completed, failed or cancelled: there is nothing left to control.
    Finished(AsyncJob),
}

/// Job storage as the handlers need it. Every state change is a conditional write, so
/// concurrent callers never overwrite each other.
pub trait JobStore: Send + Sync {
    /// The clock the store, and whoever works with it, reads the time from.
    fn clock(&self) -> &Clock;

    /// The job, strongly consistent; `None` when unknown or expired.
    fn get(&self, id: &JobId)
    -> impl Future<Output = Result<Option<StoredJob>, StoreError>> + Send;

    /// Writes `job` (a new `accepted` data migration) unless [`answer_without_writing`]
    /// finds that an existing job answers the kick-off. With a `delivery`, a delivery seen
    /// before answers with the job it started, and the delivery is remembered with the job.
    fn start_migration(
        &self,
        job: AsyncJob,
        delivery: Option<&Delivery>,
    ) -> impl Future<Output = Result<Kickoff, StoreError>> + Send;

    /// Pauses, resumes or cancels an `accepted` job.
    fn control(
        &self,
        id: &JobId,
        control: &Control,
    ) -> impl Future<Output = Result<Controlled, StoreError>> + Send;

    /// One page of matching jobs; reads grow with the page, never with the table.
    fn search(
        &self,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<SearchPage, StoreError>> + Send;

    /// The data version the stored data has reached; 0 before any migration.
    fn data_version(&self) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// The data migration that is accepted (queued or running), if one is.
    fn running_migration(
        &self,
    ) -> impl Future<Output = Result<Option<AsyncJob>, StoreError>> + Send;
}

/// The job runner's own writes of a job, and what the sweeper looks for.
pub trait JobRuns: JobStore {
    /// Writes `next` over the job if it is still at `expected_version`; `false` when someone
    /// wrote it first (a cancel, another worker), and nothing was written. A final write
    /// deletes the segments of the migration the job was running in the same write.
    fn save(
        &self,
        expected_version: &str,
        next: &StoredJob,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// [`save`](Self::save), and in the same write moves the stored data version up to
    /// `data_version` and deletes every segment of `done_segments`, on the condition that
    /// each is done; when the data is there or beyond already, the job is saved and the
    /// segments deleted without it. `false` when the job changed, and nothing was written.
    /// Only the data version's own condition means "there already": a write that failed
    /// for another reason is an error.
    fn save_advancing(
        &self,
        expected_version: &str,
        next: &StoredJob,
        data_version: u32,
        done_segments: &[SegmentKey],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Up to `limit` accepted jobs, oldest first: what the sweeper looks at.
    fn accepted_jobs(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredJob>, StoreError>> + Send;
    /// Deletes up to about `limit` expired jobs of each final status, oldest first, and
    /// says how many. DynamoDB's TTL deletes them only eventually (sometimes days later);
    /// until then an oldest-first search would read past them.
    fn reap_expired(&self, limit: usize) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// How long finished jobs stay readable.
    fn retention(&self) -> Duration;
}

/// The segments a migration runs in: started with the job's write, read, and written one
/// at a time by whoever runs each.
pub trait SegmentRuns: Send + Sync {
    /// [`save`](Self::save), and in the same write the new `segments` of the job's
    /// migration; `false` when the job changed, and nothing was written.
    fn start_segments(
        &self,
        expected_version: &str,
        next: &StoredJob,
        segments: &[SegmentRun],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The segments of `keys` that exist, strongly consistent, in the order of `keys`.
    fn segments(
        &self,
        keys: &[SegmentKey],
    ) -> impl Future<Output = Result<Vec<SegmentRun>, StoreError>> + Send;
    /// Writes `next` over its segment if the segment is still at the revision before
    /// `next`'s; `false` when someone wrote it first, and nothing was written.
    fn save_segment(
        &self,
        next: &SegmentRun,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The write budget a migration's segments share, wherever each runs.
pub trait WriteBudgets: Send + Sync {
    /// Reserves the next `length_ms` of the write budget the segments of `migration`'s
    /// migration share: a window no earlier than now and after every window reserved
    /// before, wherever its segment runs. Only while `migration`'s segment exists: the
    /// budget goes with the segments, and a page still running then must not bring it back.
    fn reserve_writes(
        &self,
        migration: &SegmentKey,
        length_ms: i64,
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send;
    /// Hands back the end of `reservation`'s window, from `used_until_ms` to
    /// `reserved_until_ms`, unless a later window was reserved since.
    fn return_writes(
        &self,
        migration: &SegmentKey,
        reservation: &Reservation,
        reserved_until_ms: i64,
        used_until_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Everything the job runner needs of a store: one trait per concern.
pub trait RunStore: JobRuns + SegmentRuns + WriteBudgets {}

impl<S: JobRuns + SegmentRuns + WriteBudgets> RunStore for S {}

/// The kick-off rule: `running` is the accepted migration of the job's type, if any, and
/// `same_version` the last job started for the job's data version. The repeat rule comes
/// first: a job of the same version that is accepted or completed answers the kick-off, even
/// while another version runs. Otherwise another version that runs refuses it. `None` means
/// the new job is to be written.
pub(crate) fn answer_without_writing(
    running: Option<AsyncJob>,
    same_version: Option<AsyncJob>,
) -> Option<Kickoff> {
    if let Some(existing) = same_version
        .filter(|existing| matches!(existing.status, JobStatus::Accepted | JobStatus::Completed))
    {
        return Some(Kickoff::Existing(existing));
    }
    running
        .filter(|running| running.status == JobStatus::Accepted)
        .map(Kickoff::Busy)
}

/// The segment items a write of `next` deletes: a job's final write (a cancel, a job given
/// up) takes the segments of the migration it was running with it, so none outlives the job.
/// The segments of an applied migration go with the write that applies it
/// ([`RunStore::save_advancing`]).
pub(crate) fn segments_ended_by(next: &StoredJob) -> Vec<SegmentKey> {
    let current = next.run.as_ref().and_then(|run| run.current.as_ref());
    match current {
        Some(progress) if next.job.status.is_final() => progress
            .segments
            .map(|total| SegmentKey::all(&next.job.id, progress.version, total))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What an operator's control of a job does.
// Made once per control and matched at once: boxing a variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Change {
    /// Write this over the current job.
    Write(StoredJob),
    /// Write nothing: this is the answer.
    Answer(Controlled),
}

/// The control rule: only an `accepted` job is paused, resumed or cancelled; a pause of a
/// paused job and a resume of a running one change nothing. A cancelled job is gone for a
/// cancel, as for a poll.
pub(crate) fn change(
    current: &StoredJob,
    control: &Control,
    now: OffsetDateTime,
    retention: Duration,
) -> Change {
    let paused = current.is_paused();
    match (current.job.status, control.action) {
        (JobStatus::Cancelled, Action::Cancel) => Change::Answer(Controlled::NotFound),
        (status, _) if status.is_final() => {
            Change::Answer(Controlled::Finished(current.job.clone()))
        }
        (_, Action::Cancel) => {
            let mut next = current.cancelled(now, retention);
            control.record_in(&mut next.run.get_or_insert_default().controls, now);
            Change::Write(next)
        }
        (_, Action::Pause) if paused => Change::Answer(Controlled::Already(current.job.clone())),
        (_, Action::Resume) if !paused => Change::Answer(Controlled::Already(current.job.clone())),
        _ => Change::Write(current.paused_or_resumed(control, now)),
    }
}
