//! Segment items: the lease and checkpoint of each Scan segment of a migration that runs in
//! parallel, one item per segment beside the job's own. They carry neither `status` nor
//! `type`, so no index holds them, and no expiry: the job's write that applies their
//! migration deletes them, or its final write does.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};

use super::errors::{Cancellation, store_error, transaction};
use super::item::Item;
use super::schema::{DONE, ID, REVISION, segment_key};
use super::table::{Table, s};
use super::write_id::WriteId;
use crate::model::{SegmentKey, SegmentRun, StoredJob};
use crate::store::{StoreError, Transient};

/// Keys a BatchGetItem reads at most.
const BATCH_GET_LIMIT: usize = 100;

/// How often keys DynamoDB left unprocessed are asked for before the read counts as
/// throttled, and the first wait before asking again (doubled each time: 3 s in all).
const UNPROCESSED_ATTEMPTS: u32 = 6;
const UNPROCESSED_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) fn to_item(run: &SegmentRun, write: &WriteId) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(run)
        .map_err(|e| StoreError::Failed(format!("a segment could not be written: {e}")))?;
    item.insert(ID.into(), s(segment_key(&run.key)));
    Ok(write.mark_segment(item))
}

fn decode(item: Item) -> Result<SegmentRun, StoreError> {
    serde_dynamo::from_item(item)
        .map_err(|e| StoreError::Failed(format!("a segment item cannot be read: {e}")))
}

impl Table {
    /// Writes `next` over the job if it is still at `expected_version` and, in the same
    /// transaction, the new `segments`. `false` when the job changed first.
    pub async fn start_segments(
        &self,
        expected_version: &str,
        next: &StoredJob,
        segments: &[SegmentRun],
    ) -> Result<bool, StoreError> {
        let write = WriteId::new();
        let mut request = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(self.put_if_at(expected_version, next, &write)?)
                .build(),
        );
        for segment in segments {
            let put = Put::builder()
                .table_name(&self.name)
                .set_item(Some(to_item(segment, &write)?))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", ID)
                .build()
                .expect("table and item are set");
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match transaction(request.send().await) {
            Ok(()) => Ok(true),
            Err(Cancellation::ConditionFailed(0, stored)) => Ok(write.landed_in(stored.as_ref())),
            Err(Cancellation::ConditionFailed(index, _)) => Err(StoreError::Failed(format!(
                "segment {index} of the migration exists already"
            ))),
            Err(Cancellation::Failed(error)) => Err(error),
        }
    }

    /// The segments of `keys` that exist, strongly consistent, in the order of `keys`.
    pub async fn segments(&self, keys: &[SegmentKey]) -> Result<Vec<SegmentRun>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for batch in keys.chunks(BATCH_GET_LIMIT) {
            let mut pending: Vec<Item> = batch
                .iter()
                .map(|key| Item::from([(ID.to_owned(), s(segment_key(key)))]))
                .collect();
            for attempt in 0.. {
                if pending.is_empty() {
                    break;
                }
                if attempt == UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::unavailable(
                        Transient::Throttled,
                        format!("{} segment keys were left unprocessed", pending.len()),
                    ));
                }
                if attempt > 0 {
                    // DynamoDB leaves keys when it is busy: ask again after a growing wait.
                    tokio::time::sleep(UNPROCESSED_BACKOFF * (1 << attempt)).await;
                }
                let wanted = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set");
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, wanted)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.name)
                    .into_iter()
                    .flatten()
                {
                    found.push(decode(item)?);
                }
                pending = output
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.name)
                    .map(|left| left.keys)
                    .unwrap_or_default();
            }
        }
        found.sort_by_key(|run: &SegmentRun| run.key.segment);
        Ok(found)
    }

    /// Writes `next` over its segment if the segment is still at the revision before it.
    /// `false` when someone else wrote it first; when the item carries this write's mark, an
    /// attempt whose answer was lost applied it, and it counts as written.
    pub async fn save_segment(&self, next: &SegmentRun) -> Result<bool, StoreError> {
        let write = WriteId::new();
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(next, &write)?))
            .condition_expression("#revision = :previous")
            .expression_attribute_names("#revision", REVISION)
            .expression_attribute_values(
                ":previous",
                AttributeValue::N(next.revision.saturating_sub(1).to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
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

    /// A delete, for a transaction, of the segment of `key`; `if_done`: on the condition
    /// that it is done.
    pub fn delete_segment(&self, key: &SegmentKey, if_done: bool) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key(ID, s(segment_key(key)));
        let delete = if if_done {
            delete
                .condition_expression("#done = :done")
                .expression_attribute_names("#done", DONE)
                .expression_attribute_values(":done", AttributeValue::Bool(true))
        } else {
            delete
        };
        let delete = delete.build().expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }
}
