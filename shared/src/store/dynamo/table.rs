//! Reads and conditional writes of single items in the jobs table.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::errors::{Cancellation, store_error, transaction};
use super::item;
use super::schema::{DATA_VERSION, DATA_VERSION_KEY, ID, META, VERSION_ID};
use super::write_id::WriteId;
use crate::model::{JobId, SegmentKey, StoredJob};
use crate::store::StoreError;

pub(crate) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

/// The jobs table and the client that reaches it.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    /// The job, strongly consistent; `None` when unknown or expired at `now`.
    pub async fn get(
        &self,
        id: &JobId,
        now: OffsetDateTime,
    ) -> Result<Option<StoredJob>, StoreError> {
        match self.get_item(id).await? {
            Some(found) => item::from_item(found, now),
            None => Ok(None),
        }
    }

    /// [`Self::get`], and whether the job as it is now was put there by `write`: a write
    /// whose every answer was lost may have landed, and a caller that tries again after it
    /// needs to know its own work from another writer's.
    pub async fn get_marked(
        &self,
        id: &JobId,
        now: OffsetDateTime,
        write: &WriteId,
    ) -> Result<Option<(StoredJob, bool)>, StoreError> {
        let Some(found) = self.get_item(id).await? else {
            return Ok(None);
        };
        let mine = write.landed_in(Some(&found));
        Ok(item::from_item(found, now)?.map(|job| (job, mine)))
    }

    async fn get_item(&self, id: &JobId) -> Result<Option<item::Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item)
    }

    /// A Put of `next`, marked as `write`'s, on the condition that the job is still at
    /// `expected_version`. When the condition fails, DynamoDB hands back the item as it is.
    pub(crate) fn put_if_at(
        &self,
        expected_version: &str,
        next: &StoredJob,
        write: &WriteId,
    ) -> Result<Put, StoreError> {
        Ok(Put::builder()
            .table_name(&self.name)
            .set_item(Some(write.mark_job(item::to_item(next)?)))
            .condition_expression("#meta.#version = :expected")
            .expression_attribute_names("#meta", META)
            .expression_attribute_names("#version", VERSION_ID)
            .expression_attribute_values(":expected", s(expected_version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table and item are set"))
    }

    /// Writes `next` if the job is still at `expected_version`. `false` when someone else
    /// wrote it first; but when the item carries this write's mark, an attempt whose answer
    /// was lost applied it, and it counts as written.
    pub async fn save(
        &self,
        write: &WriteId,
        expected_version: &str,
        next: &StoredJob,
    ) -> Result<bool, StoreError> {
        let result = self
            .put_alone(self.put_if_at(expected_version, next, write)?)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(write.landed_in(failed.item()))
                }
                _ => Err(store_error(error)),
            },
        }
    }

    /// [`Self::save`], and in the same transaction deletes the segment items of `segments`.
    pub async fn save_dropping(
        &self,
        write: &WriteId,
        expected_version: &str,
        next: &StoredJob,
        segments: &[SegmentKey],
    ) -> Result<bool, StoreError> {
        if segments.is_empty() {
            return self.save(write, expected_version, next).await;
        }
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.put_if_at(expected_version, next, write)?)
                .build(),
        ];
        items.extend(segments.iter().map(|key| self.delete_segment(key, false)));
        items.push(self.delete_budget(&segments[0]));
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Cancellation::ConditionFailed(0, stored)) => Ok(write.landed_in(stored.as_ref())),
            Err(Cancellation::ConditionFailed(index, _)) => Err(StoreError::Failed(format!(
                "an unconditional delete of segment {} failed its condition",
                index - 1
            ))),
            Err(Cancellation::Failed(error)) => Err(error),
        }
    }

    /// [`Self::save`], and in the same transaction moves the stored data version up to
    /// `data_version` and deletes every segment of `done_segments`, on the condition that
    /// each is done. When only the data version's condition failed, the data is there
    /// already: the job is saved and the segments deleted without it. A segment that is not
    /// done, or a transaction cancelled for any other reason (throttling, a conflict), is an
    /// error: nothing is known to be written.
    pub async fn save_advancing(
        &self,
        expected_version: &str,
        next: &StoredJob,
        data_version: u32,
        done_segments: &[SegmentKey],
    ) -> Result<bool, StoreError> {
        let advance = Update::builder()
            .table_name(&self.name)
            .key(ID, s(DATA_VERSION_KEY))
            .update_expression("SET #version = :version")
            .condition_expression("attribute_not_exists(#version) OR #version < :version")
            .expression_attribute_names("#version", DATA_VERSION)
            .expression_attribute_values(":version", AttributeValue::N(data_version.to_string()))
            .build()
            .expect("table, key and expression are set");
        let write = WriteId::new();
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.put_if_at(expected_version, next, &write)?)
                .build(),
            TransactWriteItem::builder().update(advance).build(),
        ];
        items.extend(
            done_segments
                .iter()
                .map(|key| self.delete_segment(key, true)),
        );
        items.extend(done_segments.first().map(|key| self.delete_budget(key)));
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Cancellation::ConditionFailed(0, stored)) => Ok(write.landed_in(stored.as_ref())),
            Err(Cancellation::ConditionFailed(1, _)) => {
                self.save_dropping(&write, expected_version, next, done_segments)
                    .await
            }
            Err(Cancellation::ConditionFailed(index, _)) => Err(StoreError::Failed(format!(
                "segment {} of the migration is not done",
                index - 1
            ))),
            Err(Cancellation::Failed(error)) => Err(error),
        }
    }

    /// Sends the transaction of `items`: applied, or why not.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Cancellation> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        transaction(result)
    }

    /// Sends `put`, built for a transaction, alone as a PutItem.
    pub async fn put_alone(
        &self,
        put: Put,
    ) -> Result<PutItemOutput, SdkError<PutItemError, HttpResponse>> {
        self.client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                put.return_values_on_condition_check_failure,
            )
            .send()
            .await
    }

    pub async fn data_version(&self) -> Result<u32, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, s(DATA_VERSION_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output
            .item
            .as_ref()
            .and_then(|item| item.get(DATA_VERSION)?.as_n().ok()?.parse().ok())
            .unwrap_or(0))
    }
}
