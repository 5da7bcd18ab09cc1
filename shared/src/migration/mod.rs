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

use crate::store::{DynamoStore, RunStore, StoreError};

pub use budget::WriteBudget;
pub use expire_finished::ExpireFinishedJobs;
pub use index_keys::RewriteIndexKeys;
pub use registry::Registry;
pub use scan::{scan_page, table_item_count, text};

/// What a step may use.
pub struct MigrationContext<'a> {
    pub client: &'a Client,
    /// The service's own table.
    pub jobs_table: &'a str,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// How many items a step reads at most.
    pub page_size: usize,
    /// How fast a step may write; every write of this process's migrations shares it.
    pub budget: WriteBudget,
}

impl<'a> MigrationContext<'a> {
    /// Migrations over the table of `store`, reached through its client, with no budget.
    pub fn on(store: &'a DynamoStore, page_size: usize) -> Self {
        Self {
            client: store.client(),
            jobs_table: store.table_name(),
            retention: store.retention(),
            page_size,
            budget: WriteBudget::unlimited(),
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
