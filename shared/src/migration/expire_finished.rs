//! Version 1: finished jobs written before retention existed get their TTL attribute, so
//! DynamoDB deletes them once the retention has passed.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::scan::{migrate_jobs_page, text};
use super::{Migration, MigrationContext, Step};
use crate::model::{CodeSet, JobId, JobStatus, instant};
use crate::store::StoreError;
use crate::store::dynamo::errors::applied;
use crate::store::dynamo::item::Item;
use crate::store::dynamo::schema::{EXPIRES_AT, ID, LAST_UPDATED, META, STATUS};
use crate::store::dynamo::table::s;

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
        Box::pin(migrate_jobs_page(
            context,
            cursor,
            |item| due_expiry(&item, context),
            |(id, at)| set_expiry(context, id, at),
        ))
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
        .get(LAST_UPDATED)?
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
    applied(result, |e| e.is_conditional_check_failed_exception())
}
