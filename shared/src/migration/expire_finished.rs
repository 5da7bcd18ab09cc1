//! Version 1: finished jobs written before retention existed get their TTL attribute, so
//! DynamoDB deletes them once the retention has passed.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::scan::{Pick, Scanned, migrate_jobs_page, scanned, table_item_count};
use super::{Migration, MigrationContext, Step};
use crate::model::{JobId, instant};
use crate::store::StoreError;
use crate::store::dynamo::errors::applied;
use crate::store::dynamo::item::Item;
use crate::store::dynamo::schema::{EXPIRES_AT, ID};
use crate::store::dynamo::table::s;

pub struct ExpireFinishedJobs;

impl Migration for ExpireFinishedJobs {
    fn version(&self) -> u32 {
        1
    }

    fn name(&self) -> &'static str {
        "expire-finished-jobs"
    }

    fn description(&self) -> &'static str {
        "gives finished jobs written before retention existed their expiry (TTL)"
    }

    /// Each item is migrated on its own, so any part of the table can go on its own.
    fn segmentable(&self) -> bool {
        true
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(table_item_count(context, context.jobs_table))
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(migrate_jobs_page(
            context,
            cursor,
            |item| due_expiry(item, context),
            |(id, at)| set_expiry(context, id, at),
        ))
    }
}

/// A finished job without a TTL expires a retention after it last changed.
fn due_expiry(item: Item, context: &MigrationContext<'_>) -> Pick<(JobId, OffsetDateTime)> {
    if item.contains_key(EXPIRES_AT) {
        return Pick::Keep;
    }
    let stored = match scanned(item) {
        Scanned::Job(stored) => stored,
        Scanned::NotAJob => return Pick::Keep,
        Scanned::Unreadable => return Pick::Unreadable,
    };
    match instant::parse(&stored.job.meta.last_updated) {
        Some(at) if stored.job.status.is_final() => {
            Pick::Change((stored.job.id, at + context.retention))
        }
        _ => Pick::Keep,
    }
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
