//! Version 1: finished jobs written before retention existed get their TTL attribute, so
//! DynamoDB deletes them once the retention has passed.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;

use super::{Migration, MigrationContext, Step, s, scan_page, text};
use crate::model::{CodeSet, JobId, JobStatus, instant};
use crate::store::StoreError;
use crate::store::dynamo::store_error;
use crate::store::record::Item;
use crate::store::table::{EXPIRES_AT, ID, META, STATUS};

/// Writes in flight at once within a page.
const CONCURRENCY: usize = 16;

pub struct ExpireFinishedJobs;

impl Migration for ExpireFinishedJobs {
    fn version(&self) -> u32 {
        1
    }

    fn name(&self) -> &'static str {
        "expire-finished-jobs"
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(async move {
            let (items, next) = scan_page(context, context.jobs_table, cursor).await?;
            let items_scanned = items.len() as u64;
            let due: Vec<(JobId, OffsetDateTime)> = items
                .iter()
                .filter_map(|item| due_expiry(item, context))
                .collect();
            let items_changed = stream::iter(due)
                .map(|(id, at)| set_expiry(context, id, at))
                .buffer_unordered(CONCURRENCY)
                .try_fold(
                    0,
                    |count, changed| async move { Ok(count + u64::from(changed)) },
                )
                .await?;
            Ok(Step {
                items_scanned,
                items_changed,
                next,
            })
        })
    }
}

/// A finished job without a TTL expires a retention after it last changed.
fn due_expiry(item: &Item, context: &MigrationContext<'_>) -> Option<(JobId, OffsetDateTime)> {
    if item.contains_key(EXPIRES_AT) {
        return None;
    }
    let status = JobStatus::parse(text(item, STATUS)?)?;
    if !status.is_final() {
        return None;
    }
    let last_updated = item
        .get(META)?
        .as_m()
        .ok()?
        .get("lastUpdated")?
        .as_s()
        .ok()?;
    let id = JobId::parse(text(item, ID)?)?;
    Some((id, instant::parse(last_updated)? + context.retention))
}

/// `false` when the item changed meanwhile (it got a TTL, or went away).
async fn set_expiry(
    context: &MigrationContext<'_>,
    id: JobId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let result = context
        .client
        .update_item()
        .table_name(context.jobs_table)
        .key(ID, s(id.as_str()))
        .update_expression("SET #expires = :at")
        .condition_expression("attribute_exists(#id) AND attribute_not_exists(#expires)")
        .expression_attribute_names("#id", ID)
        .expression_attribute_names("#expires", EXPIRES_AT)
        .expression_attribute_values(":at", AttributeValue::N(at.unix_timestamp().to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(store_error(error)),
    }
}
