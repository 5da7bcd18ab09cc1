//! Version 2: jobs whose index keys are missing or in an older layout get them rewritten,
//! so every search finds them again.

use futures_util::future::BoxFuture;

use super::scan::{Pick, migrate_jobs_page};
use super::{Migration, MigrationContext, Step};
use crate::model::AsyncJob;
use crate::store::{JobItem, StoreError};

pub struct RewriteIndexKeys;

impl Migration for RewriteIndexKeys {
    fn version(&self) -> u32 {
        2
    }

    fn name(&self) -> &'static str {
        "rewrite-index-keys"
    }

    fn description(&self) -> &'static str {
        "writes the search index keys of jobs that lack them or have an older layout"
    }

    /// Each item is migrated on its own, so any part of the table can go on its own.
    fn segmentable(&self) -> bool {
        true
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        context.jobs.item_count()
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(migrate_jobs_page(
            context,
            cursor,
            stale_keys,
            move |job| async move { context.jobs.rewrite_index_keys(&job).await },
        ))
    }
}

/// The job in `item`, when its index keys are not those of the current layout.
fn stale_keys(item: JobItem) -> Pick<AsyncJob> {
    match item {
        JobItem::Job {
            stored,
            index_keys_current: false,
        } => Pick::Change(stored.job),
        JobItem::Job { .. } | JobItem::NotAJob => Pick::Keep,
        JobItem::Unreadable => Pick::Unreadable,
    }
}
