//! The job table item by item, as the built-in migrations walk it: a page of items in key
//! order (of one Scan segment, if asked), and the two conditional rewrites the migrations
//! make. A migration of a table of its own works on it through the SDK client instead.

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::StoreError;
use crate::model::{AsyncJob, JobId, StoredJob};

/// One of the parts a parallel Scan divides a table into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanSegment {
    /// From 0 to `total - 1`.
    pub segment: u32,
    pub total: u32,
}

/// An item of the job table, as a migration sees it.
#[derive(Debug)]
pub enum JobItem {
    Job {
        stored: Box<StoredJob>,
        /// Whether its search index keys are those of the current layout.
        index_keys_current: bool,
    },
    /// A bookkeeping item: the data version, a segment, a budget, a delivery.
    NotAJob,
    /// A job this release cannot read; the store logs it with its id.
    Unreadable,
}

/// A page of the job table, and where the next one starts (`None`: it was the last).
#[derive(Debug)]
pub struct JobItemPage {
    pub items: Vec<JobItem>,
    pub next: Option<String>,
}

pub trait JobItems: Send + Sync {
    /// About how many items the table holds; DynamoDB refreshes the figure every few hours.
    fn item_count(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Up to `limit` items of `segment` of the table (`None`: all of it), in key order,
    /// after `cursor` (`None`: from the start).
    fn page<'a>(
        &'a self,
        segment: Option<ScanSegment>,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<JobItemPage, StoreError>>;

    /// Gives the job `id` the expiry `at`; `false` when it has one already or is gone, and
    /// nothing was written.
    fn set_expiry<'a>(
        &'a self,
        id: &'a JobId,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Writes the index keys of the current layout for `job`; `false` when the job is no
    /// longer at `job`'s version (whoever changed it wrote current keys), and nothing was
    /// written.
    fn rewrite_index_keys<'a>(
        &'a self,
        job: &'a AsyncJob,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}
