//! [`JobItems`] on DynamoDB: the job table's pages as the built-in migrations read them,
//! and their conditional rewrites of one item.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::applied;
use super::item::{self, Item, index_keys};
use super::scan::{table_item_count, table_page};
use super::schema::{EXPIRES_AT, ID, META, SORT_KEY, STATUS, TYPE_SORT_KEY, VERSION_ID};
use super::table::s;
use crate::model::{AsyncJob, JobId};
use crate::store::{JobItem, JobItemPage, JobItems, ScanSegment, StoreError};

impl JobItems for DynamoStore {
    fn item_count(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(table_item_count(self.client(), self.table_name()))
    }

    fn page<'a>(
        &'a self,
        segment: Option<ScanSegment>,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<JobItemPage, StoreError>> {
        Box::pin(async move {
            let (items, next) =
                table_page(self.client(), self.table_name(), segment, limit, cursor).await?;
            let items = items.into_iter().map(job_item).collect();
            Ok(JobItemPage { items, next })
        })
    }

    fn set_expiry<'a>(
        &'a self,
        id: &'a JobId,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let request = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .key(ID, s(id.as_str()))
            .update_expression("SET #expires = :at")
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#expires)")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":at", AttributeValue::N(at.unix_timestamp().to_string()));
        Box::pin(async move {
            applied(request.send().await, |e| {
                e.is_conditional_check_failed_exception()
            })
        })
    }

    fn rewrite_index_keys<'a>(
        &'a self,
        job: &'a AsyncJob,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (sort_key, type_sort_key) = index_keys(job);
        let update = match type_sort_key {
            Some(_) => "SET #sort = :sort, #typeSort = :typeSort",
            None => "SET #sort = :sort REMOVE #typeSort",
        };
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .key(ID, s(job.id.as_str()))
            .update_expression(update)
            .condition_expression("#meta.#version = :version")
            .expression_attribute_names("#sort", SORT_KEY)
            .expression_attribute_names("#typeSort", TYPE_SORT_KEY)
            .expression_attribute_names("#meta", META)
            .expression_attribute_names("#version", VERSION_ID)
            .expression_attribute_values(":sort", s(sort_key))
            .expression_attribute_values(":version", s(job.meta.version_id.as_str()));
        if let Some(type_sort_key) = type_sort_key {
            request = request.expression_attribute_values(":typeSort", s(type_sort_key));
        }
        Box::pin(async move {
            applied(request.send().await, |e| {
                e.is_conditional_check_failed_exception()
            })
        })
    }
}

/// What a migration makes of a scanned item: a job, with whether its index keys are
/// current; a bookkeeping item (it has no status); or a job this release cannot read,
/// logged with its id.
fn job_item(item: Item) -> JobItem {
    let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok()).cloned();
    if text(STATUS).is_none() {
        return JobItem::NotAJob;
    }
    let has = (text(SORT_KEY), text(TYPE_SORT_KEY));
    let id = text(ID).unwrap_or_default();
    match item::decode(item) {
        Ok(stored) => {
            let (sort_key, type_sort_key) = index_keys(&stored.job);
            JobItem::Job {
                index_keys_current: has == (Some(sort_key), type_sort_key),
                stored: Box::new(stored),
            }
        }
        Err(error) => {
            tracing::warn!(id, %error, "a migration skipped an item it cannot read");
            JobItem::Unreadable
        }
    }
}
