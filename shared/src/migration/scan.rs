//! Walking a table a page at a time: the Scan page a step of a migration of its own table
//! reads, and the page loop the built-in migrations of the job table share.

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::{MigrationContext, Step};
use crate::store::{self, Item, JobItem, StoreError};

/// The item count DynamoDB reports for `table` (refreshed every few hours).
pub async fn table_item_count(
    context: &MigrationContext<'_>,
    table: &str,
) -> Result<Option<u64>, StoreError> {
    store::table_item_count(context.client, table).await
}

/// Reads one page of `table` (of the context's segment of it, if it has one) in key order,
/// resuming after `cursor`. The cursor is the last key read, as JSON, so it works for any
/// table's key schema.
pub async fn scan_page(
    context: &MigrationContext<'_>,
    table: &str,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    store::table_page(
        context.client,
        table,
        context.segment,
        context.page_size,
        cursor,
    )
    .await
}

/// Writes in flight at once within a page.
const CONCURRENCY: usize = 16;

/// What a migration makes of one item it scanned.
pub(super) enum Pick<T> {
    /// Write this change.
    Change(T),
    /// Nothing to do: not a job, or up to date.
    Keep,
    /// A job this release cannot read: left as it is, and counted.
    Unreadable,
}

/// One page of the job table: reads it from `cursor`, picks the jobs to change, writes
/// them (several at once, within the context's budget), and counts the writes that landed
/// and the items skipped.
pub(super) async fn migrate_jobs_page<T, F>(
    context: &MigrationContext<'_>,
    cursor: Option<&str>,
    mut pick: impl FnMut(JobItem) -> Pick<T>,
    write: impl Fn(T) -> F,
) -> Result<Step, StoreError>
where
    F: Future<Output = Result<bool, StoreError>>,
{
    let page = context
        .jobs
        .page(context.segment, context.page_size, cursor)
        .await?;
    let items_scanned = page.items.len() as u64;
    let mut items_skipped = 0;
    let mut picked = Vec::new();
    for item in page.items {
        match pick(item) {
            Pick::Change(change) => picked.push(change),
            Pick::Keep => {}
            Pick::Unreadable => items_skipped += 1,
        }
    }
    let write = &write;
    context.budget.reserve(picked.len() as u64).await?;
    let items_changed = stream::iter(picked)
        .map(|change| async move {
            context.budget.take().await?;
            write(change).await
        })
        .buffer_unordered(CONCURRENCY)
        .try_fold(
            0,
            |count, changed| async move { Ok(count + u64::from(changed)) },
        )
        .await?;
    Ok(Step {
        items_scanned,
        items_changed,
        items_skipped,
        next: page.next,
    })
}

/// A string attribute of an item, if it has one.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}
