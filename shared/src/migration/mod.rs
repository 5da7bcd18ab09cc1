//! Data migrations as code: an ordered registry of resumable, page-at-a-time steps.
//!
//! A data-migration job applies, in order, every registered migration above the stored
//! data version up to the version it asks for. Each [`Migration::step`] handles one page and
//! returns a cursor for the next, so a run can stop at any page boundary and resume there.
//! Steps must be idempotent: after a crash, the page in flight is done again.

mod budget;
mod expire_finished;
mod index_keys;
mod registry;
mod scan;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use futures_util::future::BoxFuture;

use crate::store::{DynamoStore, JobItems, JobRuns, StoreError};

pub use crate::store::ScanSegment;
pub use budget::{SharedBudget, Window, WriteBudget};
pub use expire_finished::ExpireFinishedJobs;
pub use index_keys::RewriteIndexKeys;
pub use registry::Registry;
pub use scan::{scan_page, table_item_count, text};

/// What a step may use.
pub struct MigrationContext<'a> {
    /// The service's own table, as the built-in migrations walk it.
    pub jobs: &'a dyn JobItems,
    /// For a migration of a table of its own.
    pub client: &'a Client,
    /// The name of the service's own table.
    pub jobs_table: &'a str,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// How many items a step reads at most.
    pub page_size: usize,
    /// How fast a step may write; every write made through this context shares it.
    pub budget: WriteBudget<'a>,
    /// The part of the table a step of a segmentable migration walks; `None`: all of it.
    pub segment: Option<ScanSegment>,
}

impl<'a> MigrationContext<'a> {
    /// Migrations over the table of `store`, reached through its client, with no budget.
    pub fn on(store: &'a DynamoStore, page_size: usize) -> Self {
        Self {
            jobs: store,
            client: store.client(),
            jobs_table: store.table_name(),
            retention: store.retention(),
            page_size,
            budget: WriteBudget::unlimited(),
            segment: None,
        }
    }

    /// The same, writing at most `items_per_second` items a second when that is set.
    pub fn with_budget(self, items_per_second: Option<u32>) -> Self {
        Self {
            budget: items_per_second
                .map_or_else(WriteBudget::unlimited, WriteBudget::items_per_second),
            ..self
        }
    }

    /// A context for one page of a segment: of the part of the table `segment` says (`None`:
    /// all of it), of at most `page_size` items, writing within `budget`.
    pub fn for_page(
        &self,
        segment: Option<ScanSegment>,
        page_size: usize,
        budget: WriteBudget<'a>,
    ) -> Self {
        Self {
            jobs: self.jobs,
            client: self.client,
            jobs_table: self.jobs_table,
            retention: self.retention,
            page_size,
            budget,
            segment,
        }
    }
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub items_scanned: u64,
    pub items_changed: u64,
    /// Items the step could not read, and left as they were (it logs each with its key).
    pub items_skipped: u64,
    /// Where the next step starts; `None` when the migration is done.
    pub next: Option<String>,
}

pub trait Migration: Send + Sync {
    /// The data version the data is at once this migration has run; at least 1.
    fn version(&self) -> u32;

    fn name(&self) -> &'static str;

    /// What the migration does, in one line, for the list of migrations.
    fn description(&self) -> &'static str {
        ""
    }

    /// Whether the migration can run as parallel Scan segments: its step then walks only
    /// the context's [`MigrationContext::segment`] (as [`scan_page`] does), and works on
    /// each item alone, whatever segment or order the other items are migrated in.
    fn segmentable(&self) -> bool {
        false
    }

    /// About how many items the migration will scan, when it can tell: the number progress
    /// is shown against. DynamoDB refreshes a table's `ItemCount` every few hours, so it is
    /// an estimate.
    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let _ = context;
        Box::pin(async { Ok(None) })
    }

    /// Migrates the page that starts at `cursor` (`None`: the first page).
    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>>;
}
