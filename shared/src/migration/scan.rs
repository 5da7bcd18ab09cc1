//! Walking a table a page at a time: the Scan page a step reads, its cursor, and the page
//! loop the built-in migrations share.

use std::future::Future;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::{MigrationContext, Step};
use crate::model::StoredJob;
use crate::store::StoreError;
use crate::store::dynamo::errors::store_error;
use crate::store::dynamo::item::{self, Item};
use crate::store::dynamo::schema::{ID, STATUS};

/// The item count DynamoDB reports for `table` (refreshed every few hours).
pub async fn table_item_count(
    context: &MigrationContext<'_>,
    table: &str,
) -> Result<Option<u64>, StoreError> {
    let output = context
        .client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(store_error)?;
    Ok(output
        .table
        .and_then(|table| table.item_count)
        .and_then(|count| u64::try_from(count).ok()))
}

/// Reads one page of `table` (of the context's segment of it, if it has one) in key order,
/// resuming after `cursor`. The cursor is the last key read, as JSON, so it works for any
/// table's key schema.
pub async fn scan_page(
    context: &MigrationContext<'_>,
    table: &str,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let start = cursor.map(decode_cursor).transpose()?;
    let output = context
        .client
        .scan()
        .table_name(table)
        .limit(i32::try_from(context.page_size).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .set_segment(context.segment.map(|part| part.segment as i32))
        .set_total_segments(context.segment.map(|part| part.total as i32))
        .send()
        .await
        .map_err(store_error)?;
    let next = output
        .last_evaluated_key
        .map(|key| encode_cursor(&key))
        .transpose()?;
    Ok((output.items.unwrap_or_default(), next))
}

fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    let value: Value = serde_dynamo::from_item(key.clone())
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))?;
    Ok(value.to_string())
}

fn decode_cursor(cursor: &str) -> Result<Item, StoreError> {
    let value: Value = serde_json::from_str(cursor)
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))?;
    serde_dynamo::to_item(value)
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))
}

/// Writes in flight at once within a page.
const CONCURRENCY: usize = 16;

/// What a migration makes of one item it scanned.
pub(super) enum Pick<T> {
    /// Write this change.
    Change(T),
    /// Nothing to do: not a job, or up to date.
    Keep,
    /// A job this release cannot read: left as it is, counted, and logged by the picker.
    Unreadable,
}

/// One page of the jobs table: scans it from `cursor`, picks the items to change, writes
/// them (several at once, within the context's budget), and counts the writes that landed
/// and the items skipped.
pub(super) async fn migrate_jobs_page<T, F>(
    context: &MigrationContext<'_>,
    cursor: Option<&str>,
    mut pick: impl FnMut(Item) -> Pick<T>,
    write: impl Fn(T) -> F,
) -> Result<Step, StoreError>
where
    F: Future<Output = Result<bool, StoreError>>,
{
    let (items, next) = scan_page(context, context.jobs_table, cursor).await?;
    let items_scanned = items.len() as u64;
    let mut items_skipped = 0;
    let mut picked = Vec::new();
    for item in items {
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
        next,
    })
}

/// A scanned item, read as a job.
pub(super) enum Scanned {
    Job(Box<StoredJob>),
    /// A bookkeeping item: it has no status.
    NotAJob,
    /// A job this release cannot read (logged with its id).
    Unreadable,
}

pub(super) fn scanned(item: Item) -> Scanned {
    if text(&item, STATUS).is_none() {
        return Scanned::NotAJob;
    }
    let id = text(&item, ID).unwrap_or_default().to_owned();
    match item::decode(item) {
        Ok(stored) => Scanned::Job(Box::new(stored)),
        Err(error) => {
            tracing::warn!(id, %error, "a migration skipped an item it cannot read");
            Scanned::Unreadable
        }
    }
}

/// A string attribute of an item, if it has one.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    #[test]
    fn cursors_round_trip_any_key() {
        let key = Item::from([
            ("pk".to_owned(), AttributeValue::S("a#b".into())),
            ("sk".to_owned(), AttributeValue::N("12".into())),
        ]);
        assert_eq!(decode_cursor(&encode_cursor(&key).unwrap()).unwrap(), key);
        assert!(decode_cursor("not json").is_err());
    }
}
