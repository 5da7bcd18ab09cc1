//! The jobs table's layout: attribute names, indexes, and the keys of the items that are not
//! jobs. `docs/design.md` describes it.
//!
//! Every search is a Query on one of two sparse GSIs, both ordered by request time then id:
//! - `status-index`: partition `status`, sort `sortKey` = `{requestTime}#{id}`;
//! - `type-index`: partition `type`, sort `typeSortKey` = `{status}#{requestTime}#{id}`, so a
//!   search on type and status is one key range.
//!
//! Bookkeeping items carry neither `status` nor `type`, so no index holds them, and their
//! ids contain `~`, which no job id can.

use crate::model::{JobType, SegmentKey};
use crate::store::Delivery;

pub const ID: &str = "id";
pub const STATUS: &str = "status";
pub const TYPE: &str = "type";
pub const META: &str = "meta";
pub const VERSION_ID: &str = "versionId";
pub const SORT_KEY: &str = "sortKey";
pub const TYPE_SORT_KEY: &str = "typeSortKey";
/// Epoch seconds after which DynamoDB's TTL deletes a finished job.
pub const EXPIRES_AT: &str = "expiresAt";
/// The worker's lease and checkpoint ([`crate::model::RunState`]).
pub const RUN: &str = "run";
/// The data version the stored data has reached, on the [`DATA_VERSION_KEY`] item.
pub const DATA_VERSION: &str = "dataVersion";
/// The job a bookkeeping item points at.
pub const JOB_ID: &str = "jobId";
/// A segment item's write count, which its conditional writes check.
pub const REVISION: &str = "revision";
/// Whether a segment scanned its last page.
pub const DONE: &str = "done";
/// The mark of the write that put an item there ([`super::write_id::WriteId`]); a job keeps
/// it in its [`RUN`] map.
pub const WRITE_ID: &str = "writeId";

pub const STATUS_INDEX: &str = "status-index";
pub const TYPE_INDEX: &str = "type-index";

/// Attributes the store adds to a job item; they are not part of the resource.
pub const STORE_ONLY_ATTRIBUTES: &[&str] = &[SORT_KEY, TYPE_SORT_KEY, EXPIRES_AT, RUN];

/// The bookkeeping item that holds the stored data version.
pub const DATA_VERSION_KEY: &str = "~data-version";

/// The bookkeeping item naming the last job of `job_type` started: while that job is
/// accepted, no other of its type may start.
pub fn active_key(job_type: JobType) -> String {
    format!("~active~{job_type}")
}

/// The bookkeeping item naming the last job started for `data_version`.
pub fn version_key(job_type: JobType, data_version: u32) -> String {
    format!("~version~{job_type}~{data_version}")
}

/// The bookkeeping item naming the job a delivery of an event kick-off started.
pub fn delivery_key(delivery: &Delivery) -> String {
    format!("~delivery~{}", delivery.as_str())
}

/// How the id of every segment item begins.
pub const SEGMENT_PREFIX: &str = "~segment~";

/// The item holding one segment of a migration that runs as parallel Scan segments.
pub fn segment_key(key: &SegmentKey) -> String {
    format!(
        "{SEGMENT_PREFIX}{}~{}~{}",
        key.job_id.as_str(),
        key.version,
        key.segment
    )
}

/// The item holding the write budget the segments of a migration share.
pub fn budget_key(key: &SegmentKey) -> String {
    format!("~budget~{}~{}", key.job_id.as_str(), key.version)
}

/// Where a shared write budget's next free window starts, in epoch milliseconds.
pub const NEXT_WRITE_AT_MS: &str = "nextWriteAtMs";

/// The `type-index` sort key: status first, so one status of one type is one key range.
pub fn type_sort_key(status: &str, position: &str) -> String {
    format!("{status}#{position}")
}
